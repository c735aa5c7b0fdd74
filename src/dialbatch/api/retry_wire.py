"""Wire pieces of the retry policy per outcome (extension): reading the `retryPolicy` field
(create form, JSON create, PATCH /v1/api/workspace), its OpenAPI schema, and the policy a
batch shows on GET (the effective rule for every outcome)."""

from __future__ import annotations

import json
from typing import Any

from dialbatch.api.errors import BadRequest
from dialbatch.domain.next_state import BatchPolicy
from dialbatch.domain.retry import RetryConfig, parse_callback_policy
from dialbatch.domain.retry_policy import (
    MAX_DIALS,
    MAX_GAP_S,
    MAX_GAPS,
    OUTCOMES,
    Counting,
    InvalidRetryPolicy,
    RetryPolicy,
    parse_retry_policy,
)
from dialbatch.store.batches import Batch

DESCRIPTION = (
    "extension: the retry rule per outcome (busy, no-answer, voicemail, failed: the network "
    "could not connect a placed dial, provider-error: the provider refused the dial or never "
    'received it). Each is false or {"maxDials": 1-20, "gapsSeconds": [seconds > 0, the '
    'last repeating], "counting": "dials" (default) | "unreached" | "failedInARow"}. '
    "Outcomes left out follow smartCallbackConfig and the connection retries (or the "
    "workspace's default retryPolicy when no smartCallbackConfig is sent). Malformed: 400 "
    "naming the field. See docs/retries.md"
)
RULE_SCHEMA: dict[str, Any] = {
    "oneOf": [
        {"type": "boolean", "enum": [False]},
        {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "retry": {"type": "boolean", "default": True},
                "maxDials": {"type": "integer", "minimum": 1, "maximum": MAX_DIALS},
                "gapsSeconds": {
                    "type": "array",
                    "maxItems": MAX_GAPS,
                    "items": {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_GAP_S},
                },
                "counting": {"type": "string", "enum": [c.value for c in Counting]},
            },
        },
    ]
}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": DESCRIPTION,
    "additionalProperties": False,
    "properties": {key: RULE_SCHEMA for key in OUTCOMES},
}


def parse_field(raw: Any, name: str = "retryPolicy") -> RetryPolicy | None:
    """A `retryPolicy` as sent (an object, or JSON text as a form sends it); None when
    absent or empty. Malformed: BadRequest naming the field."""
    if isinstance(raw, str):
        text = raw.strip()
        if not text:
            return None
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BadRequest(f"{name} is not valid JSON: {exc.msg}") from exc
    if raw is None:
        return None
    try:
        return parse_retry_policy(raw, name)
    except InvalidRetryPolicy as exc:
        raise BadRequest(str(exc)) from exc


def batch_retry_policy(batch: Batch, retry: RetryConfig) -> dict[str, Any]:
    """The rule each outcome of the batch's calls follows, as GET batch shows it."""
    own = None if batch.retry_policy is None else parse_retry_policy(batch.retry_policy)
    policy = BatchPolicy(parse_callback_policy(batch.callback_policy), retry_policy=own)
    return policy.effective(retry).to_json()
