"""Agents' signing secrets: derived, never stored, from a key the server keeps (or is given),
and the checks a signed request goes through; the client's standalone copy and the
carrier's callback header sign exactly as `dialbatch.signing` does. No database, no app."""

from __future__ import annotations

import stat
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from dialbatch import signing
from dialbatch.client import signing as client_signing
from dialbatch.client.signing import sign_result
from dialbatch.providers.carrier import signing as carrier_signing
from dialbatch.signing import (
    AgentSecrets,
    InvalidSignature,
    check_headers,
    load_master_key,
    verify,
)


def test_without_a_configured_key_one_is_made_once_and_kept_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = load_master_key(None, data)
    path = data / "secret.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_master_key(None, data) == first  # a restart derives the same secrets
    assert load_master_key(None, tmp_path / "elsewhere") != first


def test_processes_starting_together_agree_on_one_key(tmp_path: Path) -> None:
    with ThreadPoolExecutor(8) as pool:
        keys = set(pool.map(lambda _: load_master_key(None, tmp_path), range(16)))
    assert len(keys) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["secret.key"]  # no leftovers


def test_a_configured_key_wins_and_must_be_long(tmp_path: Path) -> None:
    key = "k" * 40
    assert load_master_key(key, tmp_path) == key.encode()
    assert not (tmp_path / "secret.key").exists()
    with pytest.raises(ValueError, match="at least 32"):
        load_master_key("short", tmp_path)


def test_secrets_differ_per_workspace_agent_and_version() -> None:
    s = AgentSecrets(b"m" * 32)
    base = s.secret_for("ws_a", "agent_1", 1)
    assert base == s.secret_for("ws_a", "agent_1", 1)
    assert base.startswith("whsec_")
    others = {
        s.secret_for("ws_b", "agent_1", 1),
        s.secret_for("ws_a", "agent_2", 1),
        s.secret_for("ws_a", "agent_1", 2),
        AgentSecrets(b"n" * 32).secret_for("ws_a", "agent_1", 1),
    }
    assert base not in others and len(others) == 4


def _headers(secret: str, body: bytes, ts: int | None = None) -> tuple[str, str]:
    signed = sign_result(secret, body, ts)
    return signed["X-Dialbatch-Timestamp"], signed["X-Dialbatch-Signature"]


def test_the_client_signature_verifies_and_any_change_breaks_it() -> None:
    body = b'{"jobId":"call_x_0"}'
    ts, sig = check_headers(*_headers("whsec_a", body))
    verify("whsec_a", ts, sig, body)
    for secret, raw in (("whsec_b", body), ("whsec_a", body + b" ")):
        with pytest.raises(InvalidSignature):
            verify(secret, ts, sig, raw)
    with pytest.raises(InvalidSignature):
        verify("whsec_a", str(int(ts) + 1), sig, body)
    # Several candidate signatures (an agent switching secrets): one match is enough.
    verify("whsec_a", ts, f"v1={'0' * 64}, {sig}", body)


def test_stale_future_and_malformed_timestamps_are_refused() -> None:
    body = b"{}"
    now = int(time.time())
    check_headers(*_headers("s", body, now - 299))
    for ts in (now - 301, now + 301):
        with pytest.raises(InvalidSignature, match="300 s"):
            check_headers(*_headers("s", body, ts))
    with pytest.raises(InvalidSignature, match="Unix time"):
        check_headers("12.5", _headers("s", body)[1])
    with pytest.raises(InvalidSignature, match="Missing"):
        check_headers(str(now), None)


@pytest.mark.parametrize(
    "body", [b"", b"{}", b'{"jobId":"call_x_0","transcript":"caf\xc3\xa9"}', bytes(range(256))]
)
@pytest.mark.parametrize("ts", [0, 1_700_000_000, 99_999_999_999])
def test_the_clients_standalone_copy_agrees_with_the_server(body: bytes, ts: int) -> None:
    assert client_signing.TIMESTAMP_HEADER == signing.TIMESTAMP_HEADER
    assert client_signing.SIGNATURE_HEADER == signing.SIGNATURE_HEADER
    headers = sign_result("whsec_agree", body, ts)
    assert headers[signing.TIMESTAMP_HEADER] == str(ts)
    expected = signing.signature("whsec_agree", str(ts), body)
    assert headers[signing.SIGNATURE_HEADER] == f"{signing.SIGNATURE_SCHEME}={expected}"
    verify("whsec_agree", str(ts), headers[signing.SIGNATURE_HEADER], body)


def test_the_carriers_header_carries_the_same_hmac() -> None:
    body = b'{"dialKey":"1:1"}'
    header = carrier_signing.sign("carrier-secret", body, at=1_700_000_000)
    assert header == f"t=1700000000,v1={signing.signature('carrier-secret', 1_700_000_000, body)}"
    assert carrier_signing.verify("carrier-secret", header, body, now=1_700_000_010) is None
    assert carrier_signing.verify("other", header, body, now=1_700_000_010) is not None
