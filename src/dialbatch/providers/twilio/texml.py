"""Telnyx's TeXML REST API spoken through the Twilio SDK (`dialect = "telnyx-texml"`).

TeXML keeps Twilio's resource and field names but not its wire format, so the SDK's three
requests are rewritten at the HTTP client, the one place that sees them whole:

- create: the SDK's `POST {base}/2010-04-01/Accounts/{a}/Calls.json` (form) becomes
  `POST {base}/Accounts/{a}/Calls` with a JSON body, `StatusCallbackEvent` as one
  space-separated string and `Timeout`/`TimeLimit` as numbers;
- fetch and update: `{base}/2010-04-01/Accounts/{a}/Calls/{sid}.json` becomes
  `{base}/Accounts/{a}/Calls/{sid}` (an update stays form-encoded, as Telnyx documents);
- `Authorization: Basic <sid:token>` becomes `Authorization: Bearer <API key>`;

and two replies are made readable to the SDK: the create reply names the call `call_sid`
(Twilio: `sid`), and errors come as `{"errors": [{"code", "title", "detail"}]}` (Twilio:
`{"code", "message", "status"}`). Fetched and updated calls already have Twilio's shape.

TeXML callbacks are not signed like Twilio's: Telnyx signs `"{telnyx-timestamp}|{body}"`
with Ed25519 (headers `telnyx-signature-ed25519`, `telnyx-timestamp`), as for Call Control
webhooks, so `verified_form` reuses that check. The signature covers the body only, not
the URL and so not the dial key in its query: the adapter trusts that key only once it
knows the key's CallSid and it matches the signed one (adapter.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from dialbatch.providers.base import CallbackRequest, InvalidSignature
from dialbatch.providers.telnyx.webhooks import verify
from dialbatch.providers.twilio.signature import Form

# The SDK's Calls URLs: `{root}/2010-04-01/Accounts/{account}/Calls[/{sid}].json`.
_CALLS = re.compile(
    r"^(?P<root>.+?)/2010-04-01/Accounts/(?P<account>[^/]+)/Calls(?:/(?P<sid>[^/]+))?\.json$"
)
# Create fields sent as JSON numbers (the SDK sends every value as a string).
_NUMBERS = frozenset({"Timeout", "TimeLimit"})


class Rewritten:
    """One SDK request as Telnyx TeXML wants it."""

    def __init__(
        self, url: str, data: dict[str, object] | str | None, headers: dict[str, str]
    ) -> None:
        self.url = url
        self.data = data
        self.headers = headers


def rewrite_request(
    method: str,
    url: str,
    data: Mapping[str, object] | None,
    headers: Mapping[str, str] | None,
    api_key: str,
) -> tuple[Rewritten, bool]:
    """The request for TeXML, and whether it creates a call (its reply needs mapping)."""
    match = _CALLS.match(url)
    if match is None:
        raise ValueError(f"the telnyx-texml dialect does not serve {method} {url}")
    root, account, sid = match["root"], match["account"], match["sid"]
    target = f"{root}/Accounts/{account}/Calls" + (f"/{sid}" if sid else "")
    sent = {
        k: v
        for k, v in (headers or {}).items()
        if k.lower() not in ("authorization", "content-type")
    }
    sent["Authorization"] = f"Bearer {api_key}"
    creating = method.upper() == "POST" and sid is None
    if not creating:
        return Rewritten(target, dict(data) if data else None, sent), False
    body: dict[str, object] = {}
    for name, value in (data or {}).items():
        if name == "StatusCallbackEvent" and isinstance(value, list | tuple):
            body[name] = " ".join(str(v) for v in value)
        elif name in _NUMBERS and isinstance(value, str) and value.isdigit():
            body[name] = int(value)
        else:
            body[name] = value
    sent["Content-Type"] = "application/json"
    return Rewritten(target, json.dumps(body), sent), True


def rewrite_reply(status: int, text: str, *, created: bool) -> str:
    """A TeXML reply in the shape the SDK parses."""
    try:
        payload: Any = json.loads(text) if text else {}
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        if status >= 400:
            return json.dumps({"code": 0, "message": text[:500], "status": status})
        return text
    if isinstance(payload.get("data"), dict):  # tolerate a `data` envelope
        payload = payload["data"]
    if status >= 400:
        return json.dumps(_twilio_error(status, payload))
    if created and not payload.get("sid") and payload.get("call_sid"):
        payload = {**payload, "sid": payload["call_sid"]}
    return json.dumps(payload)


def _twilio_error(status: int, payload: dict[str, Any]) -> dict[str, Any]:
    errors = payload.get("errors")
    first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
    raw_code = str(first.get("code", payload.get("code", "")))
    parts = [str(p) for p in (first.get("title"), first.get("detail")) if p]
    message = ": ".join(parts) or str(payload.get("message") or payload)[:500]
    return {
        "code": int(raw_code) if raw_code.isdigit() else 0,
        "message": message,
        "more_info": None,
        "status": status,
    }


def verified_form(request: CallbackRequest, public_key: str) -> Form:
    """The callback's form fields, if and only if Telnyx's Ed25519 signature over
    `timestamp|body` is valid and recent (telnyx/webhooks.py)."""
    verify(request, public_key)
    text = request.body.decode("utf-8")  # verify() refused anything not UTF-8
    try:
        return Form(parse_qsl(text, keep_blank_values=True))
    except ValueError as exc:  # pragma: no cover - parse_qsl is lenient
        raise InvalidSignature("callback body is not a form") from exc
