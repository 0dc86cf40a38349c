"""PostgreSQL ops store: state shared by several hosts, in the schema ``ops`` of one database.

The store creates its schema itself, under a transaction-level advisory lock, so two
processes starting at once do not race on the DDL. Data goes through one autocommit
connection: every write is committed before the method returns. Each ``lock()`` opens a
dedicated connection and takes a session advisory lock on it; the lock lives exactly as long
as that connection, so a killed holder never leaves it behind.

Timestamps are the RFC 3339 text the records carry, ordering columns use the ``C``
collation and JSON objects come back with sorted keys: both stores return identical records
in the same order. No message ever shows the DSN, only host, port and database name.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.types.json import set_json_loads

from liftgate.errors import LockedError, StoreError
from liftgate.store.base import (
    ApprovalRecord,
    HistoryHead,
    PendingStep,
    RunRecord,
    StepRecord,
    utcnow,
)

__all__ = ["PostgresStore"]

_SCHEMA = """
CREATE SCHEMA IF NOT EXISTS ops;
CREATE TABLE IF NOT EXISTS ops.runs (
    run_id text COLLATE "C" PRIMARY KEY,
    kind text NOT NULL,
    action text NOT NULL,
    target text NOT NULL,
    host text NOT NULL,
    state_dir text NOT NULL,
    status text NOT NULL,
    created_at text COLLATE "C" NOT NULL,
    updated_at text NOT NULL,
    finished_at text,
    plan jsonb NOT NULL,
    result jsonb NOT NULL,
    message text NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_target ON ops.runs (target, created_at);
CREATE INDEX IF NOT EXISTS runs_status ON ops.runs (status);
CREATE INDEX IF NOT EXISTS runs_target_status ON ops.runs (target, status, created_at, run_id);
CREATE TABLE IF NOT EXISTS ops.steps (
    run_id text NOT NULL REFERENCES ops.runs (run_id),
    seq integer NOT NULL,
    name text NOT NULL,
    state text NOT NULL,
    at text NOT NULL,
    detail jsonb NOT NULL,
    PRIMARY KEY (run_id, seq)
);
CREATE TABLE IF NOT EXISTS ops.history_heads (
    key text PRIMARY KEY,
    head text NOT NULL,
    count integer NOT NULL,
    updated_at text NOT NULL
);
CREATE TABLE IF NOT EXISTS ops.approvals (
    approval_id text COLLATE "C" PRIMARY KEY,
    tool text NOT NULL,
    args jsonb NOT NULL,
    args_sha256 text NOT NULL,
    env text,
    production boolean NOT NULL,
    host text NOT NULL,
    summary text NOT NULL,
    status text NOT NULL,
    created_at text COLLATE "C" NOT NULL,
    expires_at text COLLATE "C" NOT NULL,
    approved_by text,
    approved_at text,
    used_at text,
    run_id text
);
CREATE INDEX IF NOT EXISTS approvals_created ON ops.approvals (created_at);
CREATE INDEX IF NOT EXISTS approvals_status ON ops.approvals (status, expires_at);
"""

# A store created before a table was added lacks it: the DDL (all IF NOT EXISTS) runs again.
_HAS_SCHEMA = (
    "SELECT to_regclass('ops.runs') IS NOT NULL AND to_regclass('ops.steps') IS NOT NULL "
    "AND to_regclass('ops.history_heads') IS NOT NULL "
    "AND to_regclass('ops.approvals') IS NOT NULL"
)

_RUN_COLUMNS = sql.SQL(", ").join(
    sql.Identifier(c)
    for c in (
        "run_id",
        "kind",
        "action",
        "target",
        "host",
        "state_dir",
        "status",
        "created_at",
        "updated_at",
        "finished_at",
        "plan",
        "result",
        "message",
    )
)

_APPROVAL_COLUMNS = sql.SQL(", ").join(
    sql.Identifier(c)
    for c in (
        "approval_id",
        "tool",
        "args",
        "args_sha256",
        "env",
        "production",
        "host",
        "summary",
        "status",
        "created_at",
        "expires_at",
        "approved_by",
        "approved_at",
        "used_at",
        "run_id",
    )
)

# Serialises the DDL of processes starting at once (a key of the same space as lock()).
_SCHEMA_LOCK = "liftgate:ops-schema"
_POLL_SECONDS = 0.02

Conn = psycopg.Connection[tuple[Any, ...]]


def _advisory_key(name: str) -> int:
    """The advisory lock key of ``name``: first 8 bytes of its sha256 as a signed bigint."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def _sorted_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    return dict(sorted(pairs, key=lambda kv: kv[0]))


def _json_loads(data: str | bytes) -> Any:
    """jsonb reorders keys; sort them back, as the SQLite store's ``sort_keys`` dump does."""
    return json.loads(data, object_pairs_hook=_sorted_object)


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
        plan=row[10],
        result=row[11],
        message=row[12],
    )


def _approval_from_row(row: tuple[Any, ...]) -> ApprovalRecord:
    return ApprovalRecord(
        approval_id=row[0],
        tool=row[1],
        args=row[2],
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


class PostgresStore:
    """Ops store in the schema ``ops`` of the database ``dsn`` names; locks are advisory."""

    def __init__(self, dsn: str) -> None:
        try:
            params = conninfo_to_dict(dsn)
        except psycopg.Error:
            # libpq's parse errors quote pieces of the DSN, which may be the password.
            raise StoreError(
                "the DSN of the PostgreSQL ops store is not a valid libpq connection string",
                hint="use 'host=... port=... dbname=... user=...' or a postgresql:// URI",
            ) from None
        password = params.pop("password", None)
        self._secret = str(password) if password else None
        self._dsn = dsn
        self.where = "the PostgreSQL ops store {} on {} port {}".format(
            params.get("dbname") or params.get("user") or "(default database)",
            params.get("host") or "(default host)",
            params.get("port") or "5432",
        )
        self._mutex = threading.Lock()
        self._lock_conns: set[Conn] = set()
        self._db = self._connect(f"cannot open {self.where}")
        set_json_loads(_json_loads, self._db)
        try:
            with self._db.transaction():
                self._db.execute("SELECT pg_advisory_xact_lock(%s)", (_advisory_key(_SCHEMA_LOCK),))
                row = self._db.execute(_HAS_SCHEMA).fetchone()
                if not (row and row[0]):
                    self._db.execute(_SCHEMA)
        except psycopg.Error as exc:
            self._db.close()
            raise StoreError(
                f"cannot create the schema ops in {self.where}: {self._why(exc)}"
            ) from exc

    # runs -----------------------------------------------------------------
    def create_run(self, run: RunRecord) -> None:
        query = sql.SQL(
            "INSERT INTO ops.runs ({}) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s::jsonb, %s)"
        ).format(_RUN_COLUMNS)
        args = (
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
            json.dumps(run.plan, sort_keys=True),
            json.dumps(run.result, sort_keys=True),
            run.message,
        )
        try:
            with self._mutex:
                self._db.execute(query, args)
        except psycopg.errors.UniqueViolation as exc:
            raise StoreError(f"run {run.run_id} already exists in the ops store") from exc
        except psycopg.Error as exc:
            raise StoreError(f"cannot record run {run.run_id}: {self._why(exc)}") from exc

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
            "UPDATE ops.runs SET status=%s, message=%s, result=%s::jsonb, updated_at=%s, "
            "finished_at=%s WHERE run_id=%s"
        )
        args = (status, message, json.dumps(result, sort_keys=True), now, now, run_id)
        try:
            with self._mutex, self._db.transaction():
                if steps:
                    self._append_steps(run_id, steps)
                self._db.execute(end, args)
        except psycopg.Error as exc:
            raise StoreError(f"cannot record the end of run {run_id}: {self._why(exc)}") from exc

    def set_run_status(self, run_id: str, status: str, message: str = "") -> None:
        self._exec(
            "UPDATE ops.runs SET status=%s, message=%s, updated_at=%s WHERE run_id=%s",
            (status, message, utcnow(), run_id),
        )

    def get_run(self, run_id: str) -> RunRecord | None:
        query = sql.SQL("SELECT {} FROM ops.runs WHERE run_id=%s").format(_RUN_COLUMNS)
        rows = self._query(query, (run_id,))
        return _run_from_row(rows[0]) if rows else None

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
        # A NULL filter matches every row; LIMIT NULL means no limit.
        query = sql.SQL(
            "SELECT {} FROM ops.runs "
            "WHERE (%(target)s::text IS NULL OR target = %(target)s) "
            "AND (%(status)s::text IS NULL OR status = %(status)s) "
            "AND (%(kind)s::text IS NULL OR kind = %(kind)s) "
            "AND (%(host)s::text IS NULL OR host = %(host)s) "
            "AND (%(state_dir)s::text IS NULL OR state_dir = %(state_dir)s) "
            "ORDER BY created_at DESC, run_id DESC LIMIT %(limit)s::bigint"
        ).format(_RUN_COLUMNS)
        rows = self._query(
            query,
            {
                "target": target,
                "status": status,
                "kind": kind,
                "host": host,
                "state_dir": state_dir,
                "limit": limit,
            },
        )
        return [_run_from_row(r) for r in rows]

    # steps ----------------------------------------------------------------
    def record_step(
        self, run_id: str, name: str, state: str, detail: dict[str, Any] | None = None
    ) -> StepRecord:
        at = utcnow()
        body = json.dumps(detail or {}, sort_keys=True)
        try:
            # The run's row lock serialises concurrent writers of one run: MAX(seq) is read
            # by a second statement, hence with a snapshot taken after the lock was granted.
            with self._mutex, self._db.transaction():
                locked = self._db.execute(
                    "SELECT 1 FROM ops.runs WHERE run_id=%s FOR UPDATE", (run_id,)
                ).fetchone()
                if locked is None:
                    raise StoreError(
                        f"cannot journal step {name}: run {run_id} is not in the ops store"
                    )
                row = self._db.execute(
                    "INSERT INTO ops.steps (run_id, seq, name, state, at, detail) "
                    "SELECT %s, COALESCE(MAX(seq), 0) + 1, %s, %s, %s, %s::jsonb "
                    "FROM ops.steps WHERE run_id=%s RETURNING seq",
                    (run_id, name, state, at, body, run_id),
                ).fetchone()
        except psycopg.Error as exc:
            raise StoreError(
                f"cannot journal step {name} of run {run_id}: {self._why(exc)}"
            ) from exc
        assert row is not None  # INSERT ... SELECT of an aggregate always inserts one row
        return StepRecord(
            run_id=run_id, seq=int(row[0]), name=name, state=state, at=at, detail=detail or {}
        )

    def record_steps(self, run_id: str, steps: list[PendingStep]) -> None:
        if not steps:
            return
        try:
            with self._mutex, self._db.transaction():
                self._append_steps(run_id, steps)
        except psycopg.Error as exc:
            raise StoreError(f"cannot journal the steps of run {run_id}: {self._why(exc)}") from exc

    def _append_steps(self, run_id: str, steps: Sequence[PendingStep]) -> None:
        """Append ``steps`` to the run's journal, inside the caller's transaction (the run's
        row lock serialises concurrent writers of one run)."""
        locked = self._db.execute(
            "SELECT 1 FROM ops.runs WHERE run_id=%s FOR UPDATE", (run_id,)
        ).fetchone()
        if locked is None:
            raise StoreError(f"cannot journal steps: run {run_id} is not in the ops store")
        row = self._db.execute(
            "SELECT COALESCE(MAX(seq), 0) FROM ops.steps WHERE run_id=%s", (run_id,)
        ).fetchone()
        first = int(row[0]) + 1 if row else 1
        with self._db.cursor() as cur:
            cur.executemany(
                "INSERT INTO ops.steps (run_id, seq, name, state, at, detail) "
                "VALUES (%s, %s, %s, %s, %s, %s::jsonb)",
                [
                    (run_id, first + i, s.name, s.state, s.at, json.dumps(s.detail, sort_keys=True))
                    for i, s in enumerate(steps)
                ],
            )

    def steps(self, run_id: str) -> list[StepRecord]:
        rows = self._query(
            "SELECT run_id, seq, name, state, at, detail FROM ops.steps WHERE run_id=%s "
            "ORDER BY seq",
            (run_id,),
        )
        return [
            StepRecord(run_id=r[0], seq=r[1], name=r[2], state=r[3], at=r[4], detail=r[5])
            for r in rows
        ]

    # history heads --------------------------------------------------------
    def history_head(self, key: str) -> HistoryHead | None:
        rows = self._query(
            "SELECT key, head, count, updated_at FROM ops.history_heads WHERE key=%s", (key,)
        )
        if not rows:
            return None
        r = rows[0]
        return HistoryHead(key=r[0], head=r[1], count=int(r[2]), updated_at=r[3])

    def set_history_head(self, key: str, head: str, count: int) -> None:
        self._exec(
            "INSERT INTO ops.history_heads (key, head, count, updated_at) VALUES (%s,%s,%s,%s) "
            "ON CONFLICT (key) DO UPDATE SET head=excluded.head, count=excluded.count, "
            "updated_at=excluded.updated_at",
            (key, head, count, utcnow()),
        )

    # approvals ------------------------------------------------------------
    def create_approval(self, approval: ApprovalRecord) -> None:
        query = sql.SQL(
            "INSERT INTO ops.approvals ({}) VALUES "
            "(%s, %s, %s::jsonb, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        ).format(_APPROVAL_COLUMNS)
        args = (
            approval.approval_id,
            approval.tool,
            json.dumps(approval.args, sort_keys=True),
            approval.args_sha256,
            approval.env,
            approval.production,
            approval.host,
            approval.summary,
            approval.status,
            approval.created_at,
            approval.expires_at,
            approval.approved_by,
            approval.approved_at,
            approval.used_at,
            approval.run_id,
        )
        try:
            with self._mutex:
                self._db.execute(query, args)
        except psycopg.errors.UniqueViolation as exc:
            raise StoreError(
                f"approval {approval.approval_id} already exists in the ops store"
            ) from exc
        except psycopg.Error as exc:
            raise StoreError(
                f"cannot record approval {approval.approval_id}: {self._why(exc)}"
            ) from exc

    def get_approval(self, approval_id: str) -> ApprovalRecord | None:
        query = sql.SQL("SELECT {} FROM ops.approvals WHERE approval_id=%s").format(
            _APPROVAL_COLUMNS
        )
        rows = self._query(query, (approval_id,))
        return _approval_from_row(rows[0]) if rows else None

    def approve(self, approval_id: str, *, user: str, at: str) -> bool:
        return self._changed(
            "UPDATE ops.approvals SET status='approved', approved_by=%s, approved_at=%s "
            "WHERE approval_id=%s AND status='pending' AND expires_at > %s",
            (user, at, approval_id, at),
        )

    def consume_approval(
        self, approval_id: str, *, tool: str, args_sha256: str, run_id: str | None, at: str
    ) -> bool:
        return self._changed(
            "UPDATE ops.approvals SET status='used', used_at=%s, run_id=%s "
            "WHERE approval_id=%s AND status='approved' AND tool=%s AND args_sha256=%s "
            "AND expires_at > %s",
            (at, run_id, approval_id, tool, args_sha256, at),
        )

    def expire_approvals(self, at: str) -> int:
        try:
            with self._mutex:
                cur = self._db.execute(
                    "UPDATE ops.approvals SET status='expired' "
                    "WHERE status IN ('pending', 'approved') AND expires_at <= %s",
                    (at,),
                )
                return int(cur.rowcount)
        except psycopg.Error as exc:
            raise StoreError(f"cannot write {self.where}: {self._why(exc)}") from exc

    def list_approvals(
        self, *, status: str | None = None, limit: int | None = None
    ) -> list[ApprovalRecord]:
        query = sql.SQL(
            "SELECT {} FROM ops.approvals "
            "WHERE (%(status)s::text IS NULL OR status = %(status)s) "
            "ORDER BY created_at DESC, approval_id DESC LIMIT %(limit)s::bigint"
        ).format(_APPROVAL_COLUMNS)
        rows = self._query(query, {"status": status, "limit": limit})
        return [_approval_from_row(r) for r in rows]

    # locks ----------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, name: str, wait: float | None = None) -> Iterator[None]:
        key = _advisory_key(name)
        timeout = wait if wait and wait > 0 else 0
        conn = self._connect(f"cannot open {self.where} to take the lock on {name}")
        self._lock_conns.add(conn)
        held = False
        try:
            self._acquire(conn, name, key, timeout)
            held = True
            yield
        finally:
            # Closing the session releases the lock anyway; unlocking first is a courtesy.
            if held:
                with contextlib.suppress(psycopg.Error):
                    conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
            conn.close()
            self._lock_conns.discard(conn)

    def close(self) -> None:
        for conn in list(self._lock_conns):
            conn.close()
        self._lock_conns.clear()
        self._db.close()

    # internals ------------------------------------------------------------
    def _acquire(self, conn: Conn, name: str, key: int, timeout: float) -> None:
        """Try the session advisory lock every 20 ms for up to ``timeout`` seconds."""
        started = time.monotonic()
        try:
            while True:
                row = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
                if row is not None and row[0]:
                    return
                waited = time.monotonic() - started
                if waited >= timeout:
                    break
                time.sleep(_POLL_SECONDS)
        except psycopg.Error as exc:
            raise StoreError(
                f"cannot take the lock on {name} in {self.where}: {self._why(exc)}"
            ) from exc
        raise LockedError(
            f"another liftgate operation holds the lock on {name}"
            + (f" (waited {waited:.1f}s)" if timeout else ""),
            hint="retry later, or pass --wait SECONDS to wait for it",
        )

    def _connect(self, failure: str) -> Conn:
        try:
            return psycopg.connect(self._dsn, autocommit=True)
        except psycopg.Error as exc:
            raise StoreError(f"{failure}: {self._why(exc)}") from exc

    def _why(self, exc: psycopg.Error) -> str:
        """The first line of ``exc``, with the DSN's password (if any) redacted."""
        lines = str(exc).strip().splitlines()
        text = lines[0] if lines else type(exc).__name__
        return text.replace(self._secret, "[REDACTED]") if self._secret else text

    def _exec(self, query: str, args: tuple[Any, ...]) -> None:
        try:
            with self._mutex:
                self._db.execute(query, args)
        except psycopg.Error as exc:
            raise StoreError(f"cannot write {self.where}: {self._why(exc)}") from exc

    def _changed(self, query: str, args: tuple[Any, ...]) -> bool:
        """Run one conditional UPDATE; True when it changed a row (an atomic compare-and-set)."""
        try:
            with self._mutex:
                return self._db.execute(query, args).rowcount > 0
        except psycopg.Error as exc:
            raise StoreError(f"cannot write {self.where}: {self._why(exc)}") from exc

    def _query(
        self, query: str | sql.Composed, args: tuple[Any, ...] | dict[str, Any]
    ) -> list[tuple[Any, ...]]:
        try:
            with self._mutex:
                return self._db.execute(query, args).fetchall()
        except psycopg.Error as exc:
            raise StoreError(f"cannot read {self.where}: {self._why(exc)}") from exc
