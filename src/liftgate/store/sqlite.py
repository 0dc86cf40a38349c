"""SQLite ops store: one file in the state dir, file locks beside it.

The database runs in WAL mode. With ``[durability] flush = "files"`` (the default) it runs
with ``synchronous=FULL``: every commit syncs the log, so a journal entry is durable when its
commit returns. With ``flush = "filesystem"`` it runs with ``synchronous=NORMAL``: a
committed write survives the death of the process (SIGKILL), which is what recovery needs,
and the log reaches the disk with the run's next flush (one ``syncfs`` of the state dir's
file system; see ``liftgate.engine.durability``). The file targets themselves are made
durable by fsync, and recovery probes them rather than trusting the journal alone.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from liftgate.errors import LockedError, StoreError
from liftgate.store.base import (
    ApprovalRecord,
    HistoryHead,
    PendingStep,
    RunRecord,
    StepRecord,
    utcnow,
)

__all__ = ["SqliteStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    host TEXT NOT NULL,
    state_dir TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    finished_at TEXT,
    plan TEXT NOT NULL,
    result TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_target ON runs (target, created_at);
CREATE INDEX IF NOT EXISTS runs_status ON runs (status);
CREATE INDEX IF NOT EXISTS runs_target_status ON runs (target, status, created_at, run_id);
CREATE TABLE IF NOT EXISTS steps (
    run_id TEXT NOT NULL REFERENCES runs (run_id),
    seq INTEGER NOT NULL,
    name TEXT NOT NULL,
    state TEXT NOT NULL,
    at TEXT NOT NULL,
    detail TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);
CREATE TABLE IF NOT EXISTS history_heads (
    key TEXT PRIMARY KEY,
    head TEXT NOT NULL,
    count INTEGER NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS approvals (
    approval_id TEXT PRIMARY KEY,
    tool TEXT NOT NULL,
    args TEXT NOT NULL,
    args_sha256 TEXT NOT NULL,
    env TEXT,
    production INTEGER NOT NULL,
    host TEXT NOT NULL,
    summary TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    approved_by TEXT,
    approved_at TEXT,
    used_at TEXT,
    run_id TEXT
);
CREATE INDEX IF NOT EXISTS approvals_created ON approvals (created_at);
CREATE INDEX IF NOT EXISTS approvals_status ON approvals (status, expires_at);
"""

# json.dumps(value, sort_keys=True) without building an encoder per call
_dumps_sorted = json.JSONEncoder(sort_keys=True).encode

_RUN_COLUMNS = (
    "run_id, kind, action, target, host, state_dir, status, created_at, updated_at, "
    "finished_at, plan, result, message"
)


_APPROVAL_COLUMNS = (
    "approval_id, tool, args, args_sha256, env, production, host, summary, status, "
    "created_at, expires_at, approved_by, approved_at, used_at, run_id"
)


def _approval_from_row(row: tuple[Any, ...]) -> ApprovalRecord:
    return ApprovalRecord(
        approval_id=row[0],
        tool=row[1],
        args=json.loads(row[2]),
        args_sha256=row[3],
        env=row[4],
        production=bool(row[5]),
        host=row[6],
        summary=row[7],
        status=row[8],
        created_at=row[9],
        expires_at=row[10],
        approved_by=row[11],
        approved_at=row[12],
        used_at=row[13],
        run_id=row[14],
    )


def _run_from_row(row: tuple[Any, ...]) -> RunRecord:
    return RunRecord(
        run_id=row[0],
        kind=row[1],
        action=row[2],
        target=row[3],
        host=row[4],
        state_dir=row[5],
        status=row[6],
        created_at=row[7],
        updated_at=row[8],
        finished_at=row[9],
        plan=json.loads(row[10]),
        result=json.loads(row[11]),
        message=row[12],
    )


class SqliteStore:
    """Ops store in ``<state_dir>/ops.sqlite``; locks are files in ``<state_dir>/locks``."""

    def __init__(self, path: Path, lock_dir: Path, *, sync_commits: bool = False) -> None:
        """``sync_commits``: every commit syncs the log (``synchronous=FULL``); otherwise
        the caller's flushes make commits durable (``NORMAL``)."""
        self.path = path
        self.lock_dir = lock_dir
        self._lock_dir_ready = False
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            # switching to WAL and creating the schema do not wait for a busy database, so
            # processes opening a new store at the same moment take turns under a file lock
            with _flocked(path.with_name(path.name + ".init.lock"), 60.0, f"{path} (opening)"):
                self._db = sqlite3.connect(str(path), timeout=60.0, isolation_level=None)
                self._db.execute("PRAGMA busy_timeout=60000")
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute(f"PRAGMA synchronous={'FULL' if sync_commits else 'NORMAL'}")
                self._db.execute("PRAGMA foreign_keys=ON")
                self._db.executescript(_SCHEMA)
        except (sqlite3.Error, LockedError) as exc:
            raise StoreError(f"cannot open the ops store {path}: {exc}") from exc

    # runs -----------------------------------------------------------------
    def create_run(self, run: RunRecord) -> None:
        try:
            self._db.execute(
                f"INSERT INTO runs ({_RUN_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",  # noqa: S608 - fixed columns
                (
                    run.run_id,
                    run.kind,
                    run.action,
                    run.target,
                    run.host,
                    run.state_dir,
                    run.status,
                    run.created_at,
                    run.updated_at,
                    run.finished_at,
                    _dumps_sorted(run.plan),
                    _dumps_sorted(run.result),
                    run.message,
                ),
            )
        except sqlite3.IntegrityError as exc:
            raise StoreError(f"run {run.run_id} already exists in the ops store") from exc
        except sqlite3.Error as exc:
            raise StoreError(f"cannot record run {run.run_id}: {exc}") from exc

    def finish_run(
        self,
        run_id: str,
        *,
        status: str,
        message: str,
        result: dict[str, Any],
        steps: Sequence[PendingStep] = (),
    ) -> None:
        now = utcnow()
        end = (
            "UPDATE runs SET status=?, message=?, result=?, updated_at=?, finished_at=? "
            "WHERE run_id=?"
        )
        args = (status, message, _dumps_sorted(result), now, now, run_id)
        try:
            with self._transaction():
                if steps:
                    self._insert_steps(run_id, steps)
                self._db.execute(end, args)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot record the end of run {run_id}: {exc}") from exc

    def set_run_status(self, run_id: str, status: str, message: str = "") -> None:
        self._exec(
            "UPDATE runs SET status=?, message=?, updated_at=? WHERE run_id=?",
            (status, message, utcnow(), run_id),
        )

    def get_run(self, run_id: str) -> RunRecord | None:
        sql = f"SELECT {_RUN_COLUMNS} FROM runs WHERE run_id=?"  # noqa: S608 - fixed columns
        row = self._query(sql, (run_id,))
        return _run_from_row(row[0]) if row else None

    def list_runs(
        self,
        *,
        target: str | None = None,
        status: str | None = None,
        kind: str | None = None,
        host: str | None = None,
        state_dir: str | None = None,
        limit: int | None = None,
    ) -> list[RunRecord]:
        sql = f"SELECT {_RUN_COLUMNS} FROM runs"  # noqa: S608 - fixed columns; values bound
        where: list[str] = []
        args: list[Any] = []
        filters = {
            "target": target,
            "status": status,
            "kind": kind,
            "host": host,
            "state_dir": state_dir,
        }
        for column, value in filters.items():  # fixed column names; values bound
            if value is not None:
                where.append(f"{column}=?")
                args.append(value)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at DESC, run_id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        return [_run_from_row(r) for r in self._query(sql, tuple(args))]

    # steps ----------------------------------------------------------------
    def record_step(
        self, run_id: str, name: str, state: str, detail: dict[str, Any] | None = None
    ) -> StepRecord:
        at = utcnow()
        body = _dumps_sorted(detail or {})
        try:
            cur = self._db.execute(
                "INSERT INTO steps (run_id, seq, name, state, at, detail) "
                "SELECT ?, COALESCE(MAX(seq), 0) + 1, ?, ?, ?, ? FROM steps WHERE run_id=? "
                "RETURNING seq",
                (run_id, name, state, at, body, run_id),
            )
            seq = int(cur.fetchone()[0])
        except sqlite3.Error as exc:
            raise StoreError(f"cannot journal step {name} of run {run_id}: {exc}") from exc
        return StepRecord(
            run_id=run_id, seq=seq, name=name, state=state, at=at, detail=detail or {}
        )

    def record_steps(self, run_id: str, steps: list[PendingStep]) -> None:
        if not steps:
            return
        try:
            with self._transaction():
                self._insert_steps(run_id, steps)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot journal the steps of run {run_id}: {exc}") from exc

    def _insert_steps(self, run_id: str, steps: Sequence[PendingStep]) -> None:
        """Append ``steps`` to the run's journal (inside the caller's transaction)."""
        row = self._db.execute(
            "SELECT COALESCE(MAX(seq), 0) FROM steps WHERE run_id=?", (run_id,)
        ).fetchone()
        first = int(row[0]) + 1
        self._db.executemany(
            "INSERT INTO steps (run_id, seq, name, state, at, detail) VALUES (?,?,?,?,?,?)",
            [
                (run_id, first + i, s.name, s.state, s.at, _dumps_sorted(s.detail))
                for i, s in enumerate(steps)
            ],
        )

    def steps(self, run_id: str) -> list[StepRecord]:
        rows = self._query(
            "SELECT run_id, seq, name, state, at, detail FROM steps WHERE run_id=? ORDER BY seq",
            (run_id,),
        )
        return [
            StepRecord(
                run_id=r[0], seq=r[1], name=r[2], state=r[3], at=r[4], detail=json.loads(r[5])
            )
            for r in rows
        ]

    # history heads --------------------------------------------------------
    def history_head(self, key: str) -> HistoryHead | None:
        rows = self._query(
            "SELECT key, head, count, updated_at FROM history_heads WHERE key=?", (key,)
        )
        if not rows:
            return None
        r = rows[0]
        return HistoryHead(key=r[0], head=r[1], count=int(r[2]), updated_at=r[3])

    def set_history_head(self, key: str, head: str, count: int) -> None:
        self._exec(
            "INSERT INTO history_heads (key, head, count, updated_at) VALUES (?,?,?,?) "
            "ON CONFLICT (key) DO UPDATE SET head=excluded.head, count=excluded.count, "
            "updated_at=excluded.updated_at",
            (key, head, count, utcnow()),
        )

    # approvals ------------------------------------------------------------
    def create_approval(self, approval: ApprovalRecord) -> None:
        try:
            self._db.execute(
                f"INSERT INTO approvals ({_APPROVAL_COLUMNS}) "  # noqa: S608 - fixed columns
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    approval.approval_id,
                    approval.tool,
                    json.dumps(approval.args, sort_keys=True),
                    approval.args_sha256,
                    approval.env,
                    int(approval.production),
                    approval.host,
                    approval.summary,
                    approval.status,
                    approval.created_at,
                    approval.expires_at,
                    approval.approved_by,
                    approval.approved_at,
                    approval.used_at,
                    approval.run_id,
                ),
            )
        except sqlite3.IntegrityError as exc:
            raise StoreError(
                f"approval {approval.approval_id} already exists in the ops store"
            ) from exc
        except sqlite3.Error as exc:
            raise StoreError(f"cannot record approval {approval.approval_id}: {exc}") from exc

    def get_approval(self, approval_id: str) -> ApprovalRecord | None:
        sql = f"SELECT {_APPROVAL_COLUMNS} FROM approvals WHERE approval_id=?"  # noqa: S608
        rows = self._query(sql, (approval_id,))
        return _approval_from_row(rows[0]) if rows else None

    def approve(self, approval_id: str, *, user: str, at: str) -> bool:
        return self._changed(
            "UPDATE approvals SET status='approved', approved_by=?, approved_at=? "
            "WHERE approval_id=? AND status='pending' AND expires_at > ?",
            (user, at, approval_id, at),
        )

    def consume_approval(
        self, approval_id: str, *, tool: str, args_sha256: str, run_id: str | None, at: str
    ) -> bool:
        return self._changed(
            "UPDATE approvals SET status='used', used_at=?, run_id=? "
            "WHERE approval_id=? AND status='approved' AND tool=? AND args_sha256=? "
            "AND expires_at > ?",
            (at, run_id, approval_id, tool, args_sha256, at),
        )

    def expire_approvals(self, at: str) -> int:
        try:
            cur = self._db.execute(
                "UPDATE approvals SET status='expired' "
                "WHERE status IN ('pending', 'approved') AND expires_at <= ?",
                (at,),
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot write the ops store {self.path}: {exc}") from exc
        return int(cur.rowcount)

    def list_approvals(
        self, *, status: str | None = None, limit: int | None = None
    ) -> list[ApprovalRecord]:
        sql = f"SELECT {_APPROVAL_COLUMNS} FROM approvals"  # noqa: S608 - fixed columns
        args: list[Any] = []
        if status is not None:
            sql += " WHERE status=?"
            args.append(status)
        sql += " ORDER BY created_at DESC, approval_id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        return [_approval_from_row(r) for r in self._query(sql, tuple(args))]

    # locks ----------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, name: str, wait: float | None = None) -> Iterator[None]:
        """An ``flock`` on ``<lock_dir>/<sha256(name)>.lock``: it dies with the process."""
        if not self._lock_dir_ready:
            self.lock_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._lock_dir_ready = True
        digest = hashlib.sha256(name.encode()).hexdigest()[:32]
        with _flocked(self.lock_dir / f"{digest}.lock", wait if wait and wait > 0 else 0, name):
            yield

    def close(self) -> None:
        self._db.close()

    # internals ------------------------------------------------------------
    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """One write transaction: committed when the block ends, rolled back on any error."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _exec(self, sql: str, args: tuple[Any, ...]) -> None:
        try:
            self._db.execute(sql, args)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot write the ops store {self.path}: {exc}") from exc

    def _changed(self, sql: str, args: tuple[Any, ...]) -> bool:
        """Run one conditional UPDATE; True when it changed a row (an atomic compare-and-set)."""
        try:
            return self._db.execute(sql, args).rowcount > 0
        except sqlite3.Error as exc:
            raise StoreError(f"cannot write the ops store {self.path}: {exc}") from exc

    def _query(self, sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        try:
            return list(self._db.execute(sql, args).fetchall())
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read the ops store {self.path}: {exc}") from exc


@contextlib.contextmanager
def _flocked(path: Path, timeout: float, name: str) -> Iterator[None]:
    """An exclusive ``flock`` on ``path`` (created if missing), held for the block; it dies
    with the process. Waits up to ``timeout`` seconds, then LockedError naming ``name``."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        started = time.monotonic()
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                waited = time.monotonic() - started
                if waited >= timeout:
                    raise LockedError(
                        f"another liftgate operation holds the lock on {name}"
                        + (f" (waited {waited:.1f}s)" if timeout else ""),
                        hint="retry later, or pass --wait SECONDS to wait for it",
                    ) from None
                time.sleep(0.02)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
