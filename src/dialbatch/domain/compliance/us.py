"""United States: the federal calling hours and the stricter states (FL, OK, MD).

Not legal advice: rules change and more states have their own; check the current text before
relying on this table.

A US number's state is taken from its area code, as Florida's statute itself presumes ("a
Florida area code is presumed to be a Florida resident"). The table below was written out from
phonenumbers' geocoder (``description_for_number``) and tests/domain/test_compliance.py checks
that every area code in it is geocoded to its state and that no other area code is.
"""

from __future__ import annotations

from dialbatch.domain.caps import Caps
from dialbatch.domain.compliance.rules import CapRule, Pack, RegionRules, WindowRule
from dialbatch.domain.windows import CallingWindow

# Area code -> state, for the states that have rules in this pack.
AREA_CODE_STATE: dict[str, str] = {
    **dict.fromkeys(
        [
            "239",
            "305",
            "321",
            "324",
            "352",
            "386",
            "407",
            "448",
            "561",
            "645",
            "656",
            "689",
            "727",
            "728",
            "754",
            "772",
            "786",
            "813",
            "850",
            "863",
            "904",
            "941",
            "954",
        ],
        "US-FL",
    ),
    **dict.fromkeys(["405", "539", "572", "580", "918"], "US-OK"),
    **dict.fromkeys(["227", "240", "301", "410", "443", "667"], "US-MD"),
}


def state_of(e164: str) -> str | None:
    """The state (ISO 3166-2, "US-FL") of a +1 number whose area code this pack has rules for."""
    if len(e164) != 12 or not e164.startswith("+1"):
        return None
    return AREA_CODE_STATE.get(e164[2:5])


def _state(region: str, source: str) -> RegionRules:
    code = region.removeprefix("US-").lower()
    return RegionRules(
        region=region,
        hours=(
            WindowRule(
                name=f"us.{code}.hours",
                source=source,
                window=CallingWindow.every_day("08:00", "20:00"),
            ),
        ),
        caps=(
            CapRule(
                name=f"us.{code}.frequency",
                source=source,
                caps=Caps(per_24h=3),
            ),
        ),
    )


US = Pack(
    name="us",
    title="United States (TCPA, with Florida, Oklahoma and Maryland rules)",
    hours=(
        WindowRule(
            name="us.federal.hours",
            # 47 CFR 64.1200(c)(1): no telephone solicitation before 8 a.m. or after 9 p.m.
            # local time at the called party's location.
            source="47 CFR 64.1200(c)(1)",
            window=CallingWindow.every_day("08:00", "21:00"),
        ),
    ),
    regions=(
        # Fla. Stat. 501.616 as amended in 2021 (Florida's "mini-TCPA"): calls only 8:00-20:00
        # in the called person's time; at most 3 calls per 24 hours on the same subject; a
        # Florida area code is presumed to be a Florida resident.
        _state("US-FL", "Fla. Stat. 501.616 (2021 amendment)"),
        # Oklahoma Telephone Solicitation Act of 2022 (HB 3168, from November 2022): 8:00-20:00,
        # at most 3 calls per 24 hours on the same subject.
        _state("US-OK", "Oklahoma Telephone Solicitation Act of 2022 (HB 3168)"),
        # Maryland Stop the Spam Calls Act (in force January 2024): 8:00-20:00, at most 3 calls
        # or texts per 24 hours on the same subject.
        _state("US-MD", "Maryland Stop the Spam Calls Act (in force January 2024)"),
    ),
    region_of=state_of,
)
