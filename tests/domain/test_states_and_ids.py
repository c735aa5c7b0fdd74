"""Internal states read as the contract's words; jobIds round-trip."""

from __future__ import annotations

from dialbatch.domain.ids import dial_key, job_id, parse_job_id
from dialbatch.domain.states import CallState, states_for_wire, wire_status


def test_claimed_reads_as_waiting_and_dialing_as_active() -> None:
    assert wire_status(CallState.CLAIMED) == "waiting"
    assert wire_status(CallState.DIALING) == "active"
    assert wire_status(CallState.UNKNOWN) == "active"
    assert set(states_for_wire("waiting")) == {CallState.WAITING, CallState.CLAIMED}


def test_job_id_round_trips_and_rejects_foreign_ids() -> None:
    assert parse_job_id(job_id("batch_abc123", 42)) == ("batch_abc123", 42)
    for bad in ("call_", "call_x", "call_abc_", "call_abc_-1", "job_abc_1", "call_abc_1e3"):
        assert parse_job_id(bad) is None


def test_dial_keys_differ_per_attempt() -> None:
    assert dial_key("batch_a", 1, 1) != dial_key("batch_a", 1, 2)
