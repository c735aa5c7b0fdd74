"""The API's side of agent signing: the app's AgentSecrets. Key handling and the checks
themselves live in `dialbatch.signing` (shared with the CLI, the carrier and the client);
they are re-exported here for the routers."""

from __future__ import annotations

from starlette.requests import HTTPConnection

from dialbatch.signing import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    AgentSecrets,
    InvalidSignature,
    check_headers,
    signature,
    verify,
)

__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "AgentSecrets",
    "InvalidSignature",
    "agent_secrets",
    "check_headers",
    "signature",
    "verify",
]


def agent_secrets(conn: HTTPConnection) -> AgentSecrets:
    """The app's AgentSecrets: set at start (`app.state.agent_secrets`), else made on first
    use from the app's settings."""
    state = conn.app.state
    found: AgentSecrets | None = getattr(state, "agent_secrets", None)
    if found is None:
        found = state.agent_secrets = AgentSecrets.from_settings(state.settings)
    return found
