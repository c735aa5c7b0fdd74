"""Checking `X-Twilio-Signature` before a callback is believed.

Twilio signs the full URL it called (ours: DIALBATCH_PUBLIC_URL + path + query) followed by
the sorted form fields, with HMAC-SHA1 keyed by the auth token (SignalWire: the signing
key, header X-SignalWire-Signature). The SDK's RequestValidator
does the arithmetic; this module decides what it is given. The body is only split into
fields here, to be hashed; nothing in it is read until the signature matches.

Twilio signatures carry no timestamp, so a captured callback could be replayed; that is
harmless here because events are applied forward-only (a replay is a duplicate).
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from twilio.request_validator import (  # type: ignore[import-untyped]
    SIGNATURE_HEADER,
    SIGNATURE_SETTINGS_HEADER,
    RequestValidator,
    get_signature_algorithm,
)

from dialbatch.providers.base import CallbackRequest, InvalidSignature

# SignalWire's Compatibility API signs the same way under its own header name.
SIGNALWIRE_HEADER = "X-SignalWire-Signature"


class Form(dict[str, str]):
    """Form fields, keeping every value of a repeated name for the signature (the
    validator asks for `getlist`, as with Django's QueryDict)."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        super().__init__()
        self._all: dict[str, list[str]] = {}
        for name, value in pairs:
            self._all.setdefault(name, []).append(value)
            self.setdefault(name, value)

    def getlist(self, name: str) -> list[str]:
        return list(self._all.get(name, []))


def verified_form(request: CallbackRequest, validator: RequestValidator) -> Form:
    """The callback's form fields, if and only if Twilio's signature over them is valid."""
    signature = request.header(SIGNATURE_HEADER) or request.header(SIGNALWIRE_HEADER)
    if not signature:
        raise InvalidSignature(f"no {SIGNATURE_HEADER} header")
    try:
        text = request.body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidSignature("callback body is not UTF-8") from exc
    form = Form(parse_qsl(text, keep_blank_values=True))
    algorithm = get_signature_algorithm(request.header(SIGNATURE_SETTINGS_HEADER))
    if not validator.validate(request.url, form, signature, algorithm):
        raise InvalidSignature(f"{SIGNATURE_HEADER} does not match {request.url}")
    return form
