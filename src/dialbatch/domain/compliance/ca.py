"""Canada: the CRTC's Unsolicited Telecommunications Rules (telemarketing).

Not legal advice: rules change; check the current text before relying on this table.
"""

from __future__ import annotations

from dialbatch.domain.compliance.rules import Pack, WindowRule
from dialbatch.domain.windows import parse_calling_window

CA = Pack(
    name="ca",
    title="Canada (CRTC Unsolicited Telecommunications Rules)",
    hours=(
        WindowRule(
            name="ca.crtc.hours",
            # CRTC Unsolicited Telecommunications Rules, Telemarketing Rules:
            # telemarketing calls only 9:00-21:30 on weekdays and 10:00-18:00 on Saturdays and
            # Sundays, in the called consumer's local time.
            source="CRTC Unsolicited Telecommunications Rules (Telemarketing Rules)",
            window=parse_calling_window(
                {
                    "days": {
                        **{
                            day: [["09:00", "21:30"]] for day in ("mon", "tue", "wed", "thu", "fri")
                        },
                        **{day: [["10:00", "18:00"]] for day in ("sat", "sun")},
                    }
                }
            ),
        ),
    ),
)
