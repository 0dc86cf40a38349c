"""Which artifacts to keep: restic's ``forget --keep-*`` rules, as one pure function.

The artifacts are taken newest first. Each rule is a bucket with a count:

* ``keep_last``: the N newest artifacts;
* ``keep_daily``: the newest artifact of each of the N most recent days that have one;
* ``keep_weekly``: the same per ISO week (``2026-W47``);
* ``keep_monthly``: the same per calendar month.

An artifact kept by any rule is kept; every other one is removed. Like restic, when a rule
still has count left after the oldest artifact, the oldest artifact is kept too (this keeps
the longest history the counts allow: a new series of daily backups with ``keep_monthly=3``
keeps its very first backup until three months have passed). Days, weeks and months are
those of the datetimes given (``created_at`` is in UTC). A rule set to ``None`` or 0 is
off; a policy where every rule is off would remove everything and is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from liftgate.errors import UsageError

if TYPE_CHECKING:
    from liftgate.engine.project import Project

__all__ = ["RetentionPolicy", "policy_for", "select"]


@dataclass(frozen=True)
class RetentionPolicy:
    """How many artifacts each rule keeps (``None`` or 0: the rule is off)."""

    keep_last: int | None = None
    keep_daily: int | None = 7
    keep_weekly: int | None = 4
    keep_monthly: int | None = 3

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise UsageError for a negative count or a policy that keeps nothing."""
        for name, value in self.rules():
            if value is not None and (isinstance(value, bool) or value < 0):
                raise UsageError(f"keep_{name} must be a count of 0 or more, not {value!r}")
        if not any(value for _, value in self.rules()):
            raise UsageError(
                "the retention policy keeps nothing, which would remove every artifact",
                hint="give at least one of keep_last, keep_daily, keep_weekly, keep_monthly",
            )

    def rules(self) -> list[tuple[str, int | None]]:
        return [
            ("last", self.keep_last),
            ("daily", self.keep_daily),
            ("weekly", self.keep_weekly),
            ("monthly", self.keep_monthly),
        ]

    def describe(self) -> str:
        """E.g. ``keep 7 daily, 4 weekly, 3 monthly``."""
        parts = [f"{value} {name}" for name, value in self.rules() if value]
        return "keep " + ", ".join(parts)


def _day(when: datetime, _nr: int) -> str:
    return when.strftime("%Y-%m-%d")


def _week(when: datetime, _nr: int) -> str:
    year, week, _ = when.isocalendar()
    return f"{year:04d}-W{week:02d}"


def _month(when: datetime, _nr: int) -> str:
    return when.strftime("%Y-%m")


def _position(_when: datetime, nr: int) -> str:
    return str(nr + 1)


_BUCKETERS: dict[str, Callable[[datetime, int], str]] = {
    "last": _position,
    "daily": _day,
    "weekly": _week,
    "monthly": _month,
}


def select(
    items: list[tuple[str, datetime]], policy: RetentionPolicy
) -> tuple[dict[str, list[str]], list[str]]:
    """Apply ``policy`` to ``(artifact_id, created_at)`` pairs.

    Returns ``(kept, removed)``: ``kept`` maps each kept id to why (``"last 1"``,
    ``"daily 2026-11-21"``, ``"weekly 2026-W47"``, ``"monthly 2026-11"``, with
    ``" (oldest)"`` for restic's oldest-artifact rule), newest first; ``removed`` lists
    the other ids, newest first. Items with the same time are ordered by id, descending.
    """
    policy.validate()
    ids = [artifact_id for artifact_id, _ in items]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise UsageError(f"the artifact id {dup} appears twice in the list to select from")
    try:
        ordered = sorted(items, key=lambda item: (item[1], item[0]), reverse=True)
    except TypeError:
        raise UsageError(
            "artifact times must be all timezone-aware or all naive, not a mix"
        ) from None
    counts: dict[str, int] = {name: value or 0 for name, value in policy.rules()}
    last_value: dict[str, str | None] = dict.fromkeys(counts)
    kept: dict[str, list[str]] = {}
    removed: list[str] = []
    oldest = len(ordered) - 1
    for nr, (artifact_id, when) in enumerate(ordered):
        reasons: list[str] = []
        for name, bucketer in _BUCKETERS.items():
            if counts[name] <= 0:
                continue
            value = bucketer(when, nr)
            if value != last_value[name]:
                reasons.append(f"{name} {value}")
            elif nr == oldest:
                reasons.append(f"{name} {value} (oldest)")
            else:
                continue
            last_value[name] = value
            counts[name] -= 1
        if reasons:
            kept[artifact_id] = reasons
        else:
            removed.append(artifact_id)
    return kept, removed


def policy_for(
    project: Project,
    *,
    keep_last: int | None,
    keep_daily: int | None,
    keep_weekly: int | None,
    keep_monthly: int | None,
    unsafe: Collection[str] = (),
) -> tuple[RetentionPolicy, dict[str, Any]]:
    """The policy of ``artifacts prune``: the ``--keep-*`` options given, else the
    ``retention_policy_default`` guardrail of the backup skill (7/4/3 as shipped; a lower
    value from the project's registry override needs ``--unsafe-guardrail``)."""
    from liftgate.engine.guardrails import Guardrails

    guardrails = Guardrails.for_skill(project, "backup-odoo-environment", unsafe)
    if any(v is not None for v in (keep_last, keep_daily, keep_weekly, keep_monthly)):
        guardrails.record(
            "retention_policy_default", "not_applicable", "the --keep-* options were given"
        )
        return RetentionPolicy(
            keep_last, keep_daily, keep_weekly, keep_monthly
        ), guardrails.as_json()
    value = guardrails.value("retention_policy_default")
    guardrails.record(
        "retention_policy_default",
        "enforced",
        f"daily {value['daily']}, weekly {value['weekly']}, monthly {value['monthly']}",
    )
    policy = RetentionPolicy(None, value["daily"], value["weekly"], value["monthly"])
    return policy, guardrails.as_json()
