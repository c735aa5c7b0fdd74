"""A batch's own maxConcurrency and priority: parsing and the claim's service order."""

from __future__ import annotations

import pytest

from dialbatch.domain.batch_limits import (
    InvalidBatchLimit,
    Runnable,
    parse_max_concurrency,
    parse_priority,
    service_order,
)


@pytest.mark.parametrize(
    ("raw", "value"), [(None, None), ("", None), (" 3 ", 3), (1, 1), ("+7", 7)]
)
def test_max_concurrency_reads_whole_numbers_from_json_and_forms(
    raw: object, value: int | None
) -> None:
    assert parse_max_concurrency(raw) == value


@pytest.mark.parametrize("raw", [0, -1, "0", "-3", "2.5", 2.5, "abc", True, [3], "1e3", 10**7])
def test_max_concurrency_refuses_anything_but_a_whole_number_from_1(raw: object) -> None:
    with pytest.raises(InvalidBatchLimit, match="maxConcurrency"):
        parse_max_concurrency(raw)


@pytest.mark.parametrize(("raw", "value"), [(None, 0), ("", 0), ("-100", -100), (100, 100), (5, 5)])
def test_priority_defaults_to_0_and_takes_the_range(raw: object, value: int) -> None:
    assert parse_priority(raw) == value


@pytest.mark.parametrize("raw", [101, -101, "1.5", 1.5, "high", False, "٣"])
def test_priority_refuses_out_of_range_and_non_integers(raw: object) -> None:
    with pytest.raises(InvalidBatchLimit, match="priority"):
        parse_priority(raw)


def test_service_order_groups_by_priority_highest_first_keeping_fair_order() -> None:
    a, b, c, d = (
        Runnable("a", 0, None),
        Runnable("b", 5, 2),
        Runnable("c", 0, 0),  # at its cap: left out
        Runnable("d", 5, None),
    )
    assert service_order([a, b, c, d]) == [[b, d], [a]]
