"""The ops store: runs, their step journal, history heads and per-target locks.

One small interface, two implementations (``sqlite`` for one host, ``postgres`` for several
hosts sharing state); both pass ``tests/test_store_contract.py``.

Contract, for every implementation:

* ``create_run`` is called once per run id; a second call with the same id raises StoreError.
* ``record_step`` appends to the run's journal; steps come back in the order recorded.
  ``record_steps`` appends several in one transaction (all or none), keeping their order;
  ``finish_run(..., steps=...)`` appends them and records the run's end in one transaction.
* every write is committed before the method returns (a SIGKILL right after the call keeps it).
* ``lock(name, wait)`` is an exclusive lock held by this process until the context exits or
  the process dies (a killed holder never leaves a lock behind). ``wait=None`` or ``0`` fails
  at once with LockedError; otherwise it waits up to ``wait`` seconds.
* ``set_history_head`` replaces the head of one history (hash of its last line, line count).
* approvals (``liftgate.engine.approvals``): ``create_approval`` is called once per id (a
  second call raises StoreError); ``approve`` moves a ``pending``, unexpired approval to
  ``approved`` and ``consume_approval`` an ``approved``, unexpired one whose tool and
  arguments hash match to ``used`` — each is one atomic compare-and-set that returns whether
  it changed the row, so of two concurrent callers exactly one wins; ``expire_approvals``
  marks every ``pending`` or ``approved`` approval whose ``expires_at`` has passed as
  ``expired``; ``list_approvals`` returns the newest first.
* nothing a store writes is a secret: callers redact before calling.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, NamedTuple, Protocol

__all__ = [
    "APPROVAL_STATUSES",
    "ApprovalRecord",
    "HistoryHead",
    "OpsStore",
    "PendingStep",
    "RunRecord",
    "StepRecord",
    "utcnow",
]

APPROVAL_STATUSES = ("pending", "approved", "used", "expired")


def utcnow() -> str:
    """Now, as RFC 3339 UTC with microseconds (sorts as text): ``2026-01-01T12:00:00.000000Z``."""
    # isoformat is cheaper than strftime; "+00:00" becomes "Z"
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")[:-6] + "Z"


class RunRecord(NamedTuple):
    """One run as the store keeps it. ``plan`` and ``result`` are JSON-ready dicts."""

    run_id: str
    kind: str
    action: str
    target: str
    host: str
    state_dir: str
    status: str
    created_at: str
    updated_at: str
    plan: dict[str, Any]
    result: dict[str, Any]
    message: str = ""
    finished_at: str | None = None


class StepRecord(NamedTuple):
    run_id: str
    seq: int
    name: str
    state: str  # "started" | "done" | "failed"
    at: str
    detail: dict[str, Any]


class PendingStep(NamedTuple):
    """A step recorded in memory, written with others in one transaction."""

    name: str
    state: str
    at: str
    detail: dict[str, Any]


class HistoryHead(NamedTuple):
    key: str
    head: str
    count: int  # type: ignore[assignment]  # a field named like tuple.count
    updated_at: str


class ApprovalRecord(NamedTuple):
    """A person's go-ahead for one exact call of one tool (``apr-...``), single use.

    ``args`` is the call's canonical, redacted arguments and ``args_sha256`` the sha256 of
    their canonical JSON; ``status`` is one of ``APPROVAL_STATUSES``. Timestamps are RFC 3339
    UTC text (``utcnow``), so they compare as text.
    """

    approval_id: str
    tool: str
    args: dict[str, Any]
    args_sha256: str
    env: str | None
    production: bool
    host: str
    summary: str
    status: str
    created_at: str
    expires_at: str
    approved_by: str | None = None
    approved_at: str | None = None
    used_at: str | None = None
    run_id: str | None = None


class OpsStore(Protocol):
    """What the engine needs from an ops store."""

    def create_run(self, run: RunRecord) -> None: ...

    def finish_run(
        self,
        run_id: str,
        *,
        status: str,
        message: str,
        result: dict[str, Any],
        steps: Sequence[PendingStep] = (),
    ) -> None: ...

    def set_run_status(self, run_id: str, status: str, message: str = "") -> None: ...

    def get_run(self, run_id: str) -> RunRecord | None: ...

    def list_runs(
        self,
        *,
        target: str | None = None,
        status: str | None = None,
        kind: str | None = None,
        host: str | None = None,
        state_dir: str | None = None,
        limit: int | None = None,
    ) -> list[RunRecord]: ...

    def record_step(
        self, run_id: str, name: str, state: str, detail: dict[str, Any] | None = None
    ) -> StepRecord: ...

    def record_steps(self, run_id: str, steps: list[PendingStep]) -> None: ...

    def steps(self, run_id: str) -> list[StepRecord]: ...

    def history_head(self, key: str) -> HistoryHead | None: ...

    def set_history_head(self, key: str, head: str, count: int) -> None: ...

    def create_approval(self, approval: ApprovalRecord) -> None: ...

    def get_approval(self, approval_id: str) -> ApprovalRecord | None: ...

    def approve(self, approval_id: str, *, user: str, at: str) -> bool: ...

    def consume_approval(
        self, approval_id: str, *, tool: str, args_sha256: str, run_id: str | None, at: str
    ) -> bool: ...

    def expire_approvals(self, at: str) -> int: ...

    def list_approvals(
        self, *, status: str | None = None, limit: int | None = None
    ) -> list[ApprovalRecord]: ...

    def lock(self, name: str, wait: float | None = None) -> AbstractContextManager[None]: ...

    def close(self) -> None: ...
