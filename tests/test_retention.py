"""Retention: restic's --keep-last/daily/weekly/monthly rules as a pure function."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from liftgate.artifacts.retention import RetentionPolicy, select
from liftgate.errors import UsageError

OFF = {"keep_daily": None, "keep_weekly": None, "keep_monthly": None}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def daily_series(first: str, last: str, hour: int = 2) -> list[tuple[str, datetime]]:
    """One artifact a day, id ``a-YYYYMMDD``."""
    start, end = date.fromisoformat(first), date.fromisoformat(last)
    out = []
    day = start
    while day <= end:
        when = datetime(day.year, day.month, day.day, hour, tzinfo=UTC)
        out.append((f"a-{day:%Y%m%d}", when))
        day += timedelta(days=1)
    return out


def test_empty_list_keeps_and_removes_nothing() -> None:
    assert select([], RetentionPolicy()) == ({}, [])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"keep_last": None, **OFF},
        {"keep_last": 0, "keep_daily": 0, "keep_weekly": 0, "keep_monthly": 0},
        {"keep_last": 0, **OFF},
    ],
)
def test_policy_that_keeps_nothing_is_refused(kwargs: dict[str, int | None]) -> None:
    with pytest.raises(UsageError, match="keeps nothing"):
        select([("a", at("2026-11-21T10:00:00"))], RetentionPolicy(**kwargs))


def test_negative_count_is_refused() -> None:
    with pytest.raises(UsageError, match="keep_daily"):
        RetentionPolicy(keep_daily=-1)


def test_defaults() -> None:
    policy = RetentionPolicy()
    assert (policy.keep_last, policy.keep_daily, policy.keep_weekly, policy.keep_monthly) == (
        None,
        7,
        4,
        3,
    )
    assert policy.describe() == "keep 7 daily, 4 weekly, 3 monthly"


def test_keep_last_only() -> None:
    items = [(f"a{i}", at(f"2026-11-{10 + i:02d}T08:00:00")) for i in range(5)]
    kept, removed = select(items, RetentionPolicy(keep_last=3, **OFF))
    assert kept == {"a4": ["last 1"], "a3": ["last 2"], "a2": ["last 3"]}
    assert removed == ["a1", "a0"]


def test_keep_last_with_fewer_items_keeps_all() -> None:
    items = [("b", at("2026-11-02T00:00:00")), ("a", at("2026-11-01T00:00:00"))]
    kept, removed = select(items, RetentionPolicy(keep_last=5, **OFF))
    assert list(kept) == ["b", "a"] and removed == []


def test_several_per_day_keeps_the_newest_of_each_day() -> None:
    items = [
        ("d1-morning", at("2026-11-20T06:00:00")),
        ("d1-noon", at("2026-11-20T12:00:00")),
        ("d1-night", at("2026-11-20T23:59:59")),
        ("d2-morning", at("2026-11-21T06:00:00")),
        ("d2-evening", at("2026-11-21T18:00:00")),
        ("d3-only", at("2026-11-23T01:00:00")),
    ]
    kept, removed = select(
        items, RetentionPolicy(keep_daily=2, keep_weekly=None, keep_monthly=None)
    )
    assert kept == {"d3-only": ["daily 2026-11-23"], "d2-evening": ["daily 2026-11-21"]}
    assert removed == ["d2-morning", "d1-night", "d1-noon", "d1-morning"]


def test_days_without_artifacts_do_not_count() -> None:
    items = [("new", at("2026-11-30T00:00:00")), ("old", at("2026-01-01T00:00:00"))]
    kept, removed = select(
        items, RetentionPolicy(keep_daily=2, keep_weekly=None, keep_monthly=None)
    )
    assert set(kept) == {"new", "old"} and removed == []


def test_oldest_is_kept_while_a_rule_has_count_left() -> None:
    # restic: an unused count keeps the oldest artifact too (the longest history possible)
    items = [
        ("d2-late", at("2026-11-21T18:00:00")),
        ("d2-early", at("2026-11-21T06:00:00")),
        ("d1-late", at("2026-11-20T18:00:00")),
        ("d1-early", at("2026-11-20T06:00:00")),
    ]
    kept, removed = select(
        items, RetentionPolicy(keep_daily=3, keep_weekly=None, keep_monthly=None)
    )
    assert kept == {
        "d2-late": ["daily 2026-11-21"],
        "d1-late": ["daily 2026-11-20"],
        "d1-early": ["daily 2026-11-20 (oldest)"],
    }
    assert removed == ["d2-early"]


def test_weekly_uses_iso_weeks_across_the_new_year() -> None:
    items = [
        ("thu", at("2026-12-31T10:00:00")),  # 2026-W53
        ("fri", at("2027-01-01T10:00:00")),  # still 2026-W53
        ("mon", at("2027-01-04T10:00:00")),  # 2027-W01
        ("sun-before", at("2026-12-27T10:00:00")),  # 2026-W52
    ]
    kept, removed = select(
        items, RetentionPolicy(keep_daily=None, keep_weekly=2, keep_monthly=None)
    )
    assert kept == {"mon": ["weekly 2027-W01"], "fri": ["weekly 2026-W53"]}
    assert removed == ["thu", "sun-before"]


def test_monthly() -> None:
    items = [
        ("nov-2", at("2026-11-21T00:00:00")),
        ("nov-1", at("2026-11-01T00:00:00")),
        ("oct", at("2026-10-15T00:00:00")),
        ("sep-2", at("2026-09-30T23:00:00")),
        ("sep-1", at("2026-09-01T00:00:00")),
        ("aug", at("2026-08-10T00:00:00")),
    ]
    kept, removed = select(
        items, RetentionPolicy(keep_daily=None, keep_weekly=None, keep_monthly=3)
    )
    assert kept == {
        "nov-2": ["monthly 2026-11"],
        "oct": ["monthly 2026-10"],
        "sep-2": ["monthly 2026-09"],
    }
    assert removed == ["nov-1", "sep-1", "aug"]


def test_default_policy_over_four_months_of_daily_backups() -> None:
    items = daily_series("2026-07-01", "2026-10-28")
    kept, removed = select(items, RetentionPolicy())
    assert kept == {
        "a-20261028": ["daily 2026-10-28", "weekly 2026-W44", "monthly 2026-10"],
        "a-20261027": ["daily 2026-10-27"],
        "a-20261026": ["daily 2026-10-26"],
        "a-20261025": ["daily 2026-10-25", "weekly 2026-W43"],
        "a-20261024": ["daily 2026-10-24"],
        "a-20261023": ["daily 2026-10-23"],
        "a-20261022": ["daily 2026-10-22"],
        "a-20261018": ["weekly 2026-W42"],
        "a-20261011": ["weekly 2026-W41"],
        "a-20260930": ["monthly 2026-09"],
        "a-20260831": ["monthly 2026-08"],
    }
    assert len(removed) == len(items) - 11
    assert set(removed) | set(kept) == {i for i, _ in items}


def test_default_policy_on_a_young_series_keeps_the_first_backup() -> None:
    items = daily_series("2026-10-01", "2026-10-28")
    kept, _ = select(items, RetentionPolicy())
    assert set(kept) == {
        *(f"a-202610{d}" for d in range(22, 29)),
        "a-20261018",
        "a-20261011",
        "a-20261001",
    }
    assert kept["a-20261001"] == ["monthly 2026-10 (oldest)"]


def test_kept_for_any_reason_is_kept_and_last_combines() -> None:
    items = daily_series("2026-11-01", "2026-11-10")
    kept, removed = select(
        items, RetentionPolicy(keep_last=2, keep_daily=None, keep_weekly=1, keep_monthly=None)
    )
    assert kept == {
        "a-20261110": ["last 1", "weekly 2026-W46"],
        "a-20261109": ["last 2"],
    }
    assert len(removed) == 8


def test_input_order_does_not_matter_and_is_not_changed() -> None:
    items = daily_series("2026-11-01", "2026-11-10")
    shuffled = items[3:] + items[:3]
    before = list(shuffled)
    policy = RetentionPolicy(keep_daily=3, keep_weekly=None, keep_monthly=None)
    assert select(shuffled, policy) == select(items, policy)
    assert shuffled == before


def test_same_time_is_ordered_by_id() -> None:
    when = at("2026-11-21T10:00:00")
    kept, removed = select([("a", when), ("b", when)], RetentionPolicy(keep_last=1, **OFF))
    assert kept == {"b": ["last 1"]} and removed == ["a"]


def test_duplicate_ids_and_mixed_timezones_are_refused() -> None:
    with pytest.raises(UsageError, match="twice"):
        select([("a", at("2026-11-21T10:00:00"))] * 2, RetentionPolicy())
    mixed = [("a", at("2026-11-21T10:00:00")), ("b", datetime(2026, 11, 20))]
    with pytest.raises(UsageError, match="timezone"):
        select(mixed, RetentionPolicy())
