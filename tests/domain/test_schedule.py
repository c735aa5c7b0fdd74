"""scheduledAt: UTC with Z or an offset; zone-less times are refused, not guessed."""

from __future__ import annotations

import pytest

from dialbatch.domain.schedule import InvalidSchedule, parse_scheduled_at

NOW = 1_700_000_000_000


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2023-11-14T22:13:20Z", 1_700_000_000_000),
        ("2023-11-14T22:13:20.500Z", 1_700_000_000_500),
        ("2023-11-15T00:13:20+02:00", 1_700_000_000_000),
        ("1700000000000", 1_700_000_000_000),
    ],
)
def test_accepts_z_offsets_and_epoch_ms(raw: str, expected: int) -> None:
    assert parse_scheduled_at(raw, NOW) == expected


@pytest.mark.parametrize(
    "raw", ["tomorrow", "2023-13-01T00:00:00Z", "2023-11-14T22:13:20", "", "2099-01-01T00:00:00Z"]
)
def test_rejects_bad_times(raw: str) -> None:
    with pytest.raises(InvalidSchedule):
        parse_scheduled_at(raw, NOW)
