"""Checking a Telnyx webhook's Ed25519 signature before anything in it is read.

Telnyx signs `f"{telnyx-timestamp}|{raw body}"` with its account key; we hold the public
half. The check is the SDK's own helper (`telnyx.lib.webhook_verification`, PyNaCl
underneath), which also refuses timestamps more than 300 s away; a tighter window set in
our settings is applied first. Every failure, whatever its cause, is InvalidSignature.
"""

from __future__ import annotations

import time

from dialbatch.providers.base import CallbackRequest, InvalidSignature

SIGNATURE_HEADER = "telnyx-signature-ed25519"
TIMESTAMP_HEADER = "telnyx-timestamp"


def verify(request: CallbackRequest, public_key: str, tolerance_s: int = 300) -> None:
    """Raise InvalidSignature unless the body was signed by Telnyx within the window."""
    signature = request.header(SIGNATURE_HEADER)
    stamp = request.header(TIMESTAMP_HEADER)
    if not signature or not stamp:
        raise InvalidSignature("missing Telnyx signature headers")
    if not stamp.isdigit():
        raise InvalidSignature("malformed telnyx-timestamp")
    if abs(time.time() - int(stamp)) > tolerance_s:
        raise InvalidSignature("telnyx-timestamp outside the accepted window")
    try:
        payload = request.body.decode("utf-8")
    except UnicodeDecodeError as exc:  # Telnyx sends JSON: never valid if not UTF-8
        raise InvalidSignature("body is not UTF-8") from exc
    # Imported on first use: the Twilio adapter's TeXML dialect shares this check, and a
    # Twilio deployment should not load the whole Telnyx SDK (~60 MB) for it.
    from telnyx.lib.webhook_verification import (
        WebhookVerificationError,
        verify_webhook_signature,
    )

    headers = {SIGNATURE_HEADER: signature, TIMESTAMP_HEADER: stamp}
    try:
        verify_webhook_signature(payload, headers, public_key)
    except WebhookVerificationError as exc:
        raise InvalidSignature(exc.message) from exc
