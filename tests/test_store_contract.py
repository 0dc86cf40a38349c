"""The ops store contract (``liftgate.store.base``), run against both stores.

Every test taking ``spec`` runs twice: on a SQLite store in ``tmp_path`` and on a PostgreSQL
store in a fresh database of a private cluster started once per session. Lock tests use real
OS processes (``python -c``) as the other holder. PostgreSQL failing to start fails the
tests: nothing here skips.
"""

from __future__ import annotations

import dataclasses
import json
import os
import queue
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from liftgate.errors import LockedError, StoreError
from liftgate.sandbox.cluster import PgCluster
from liftgate.store.base import ApprovalRecord, OpsStore, PendingStep, RunRecord, StepRecord
from liftgate.store.postgres import PostgresStore
from liftgate.store.sqlite import SqliteStore

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
T0 = "2024-05-01T10:00:00.000000Z"

# Takes the lock ``name`` in its own process, reports on stdout, holds it ``hold`` seconds,
# releases it, then lingers ``linger`` seconds (still alive) before exiting.
_HOLDER = r"""
import json, sys, time
from pathlib import Path
from liftgate.errors import LockedError
spec, name = json.loads(sys.argv[1]), sys.argv[2]
hold, linger, wait = float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
if spec["kind"] == "sqlite":
    from liftgate.store.sqlite import SqliteStore
    store = SqliteStore(Path(spec["path"]), Path(spec["lock_dir"]))
else:
    from liftgate.store.postgres import PostgresStore
    store = PostgresStore(spec["dsn"])
try:
    with store.lock(name, wait=wait or None):
        print("held", flush=True)
        time.sleep(hold)
except LockedError:
    print("locked", flush=True)
    sys.exit(3)
print("released", flush=True)
time.sleep(linger)
store.close()
"""


# fixtures ---------------------------------------------------------------------------------
@dataclasses.dataclass
class StoreSpec:
    """How to open (again, from any thread or process) the store under test."""

    kind: str
    params: dict[str, str]
    opened: list[OpsStore] = dataclasses.field(default_factory=list)

    def open(self, *, track: bool = True) -> OpsStore:
        """A new store; closed at teardown unless ``track`` is false (threads close their own)."""
        store: OpsStore
        if self.kind == "sqlite":
            store = SqliteStore(Path(self.params["path"]), Path(self.params["lock_dir"]))
        else:
            store = PostgresStore(self.params["dsn"])
        if track:
            self.opened.append(store)
        return store

    def to_json(self) -> str:
        return json.dumps({"kind": self.kind, **self.params})


def _sqlite_params(tmp_path: Path) -> dict[str, str]:
    return {"path": str(tmp_path / "state" / "ops.sqlite"), "lock_dir": str(tmp_path / "locks")}


@pytest.fixture(params=["sqlite", "postgres"])
def spec(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreSpec]:
    if request.param == "sqlite":
        s = StoreSpec("sqlite", _sqlite_params(tmp_path))
    else:
        s = StoreSpec("postgres", {"dsn": request.getfixturevalue("pg_dsn")})
    yield s
    for store in s.opened:
        store.close()


@pytest.fixture
def store(spec: StoreSpec) -> OpsStore:
    return spec.open()


# helpers ----------------------------------------------------------------------------------
def make_run(run_id: str, **changes: Any) -> RunRecord:
    run = RunRecord(
        run_id=run_id,
        kind="files",
        action="promote",
        target="web",
        host="build-1",
        state_dir="/srv/liftgate/.liftgate",
        status="running",
        created_at=T0,
        updated_at=T0,
        plan={"copy": [{"src": "a", "dst": "b"}], "bytes": 12},
        result={},
        message="",
    )
    return run._replace(**changes)


class Holder:
    """A ``python -c`` process taking a store lock; its stdout lines arrive on a queue."""

    def __init__(
        self, spec: StoreSpec, name: str, *, hold: float, linger: float = 0, wait: float = 0
    ) -> None:
        argv = [sys.executable, "-c", _HOLDER, spec.to_json(), name, str(hold), str(linger)]
        self.proc = subprocess.Popen(
            [*argv, str(wait)], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.strip())
        self.lines.put("<eof>")

    def expect(self, line: str, timeout: float = 30) -> None:
        got = self.lines.get(timeout=timeout)
        assert got == line, f"holder said {got!r}, expected {line!r}"

    def close(self) -> int:
        if self.proc.poll() is None:
            self.proc.kill()
        code = self.proc.wait(timeout=30)
        self._reader.join(timeout=30)
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        return code

    def __enter__(self) -> Holder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def assert_locked_at_once(store: OpsStore, name: str, wait: float | None = None) -> None:
    started = time.monotonic()
    with pytest.raises(LockedError) as info, store.lock(name, wait=wait):
        pytest.fail("took a lock another process holds")
    assert time.monotonic() - started < 1.0
    assert info.value.message.startswith(f"another liftgate operation holds the lock on {name}")
    assert info.value.hint


# runs -------------------------------------------------------------------------------------
def test_create_and_get_run_round_trips_every_field(store: OpsStore) -> None:
    run = make_run(
        "r-1",
        plan={"nested": {"b": [1, 2.5, None, True], "a": "é ✓"}, "empty": {}},
        result={"z": 1, "a": [{"k": "v"}]},
        message="hello",
        finished_at="2024-05-01T10:00:05.000000Z",
    )
    store.create_run(run)
    assert store.get_run("r-1") == run
    assert store.get_run("missing") is None


def test_duplicate_run_id_raises_store_error(store: OpsStore) -> None:
    store.create_run(make_run("dup", message="first"))
    with pytest.raises(StoreError, match=r"^run dup already exists in the ops store$"):
        store.create_run(make_run("dup", message="second"))
    got = store.get_run("dup")
    assert got is not None and got.message == "first"


def test_list_runs_newest_first_with_filters_and_limit(store: OpsStore) -> None:
    runs = [
        make_run("a1", target="web", status="ok", created_at="2024-05-01T10:00:01.000000Z"),
        make_run("a2", target="db", status="failed", created_at="2024-05-01T10:00:02.000000Z"),
        make_run(
            "a3",
            target="web",
            status="failed",
            kind="odoo.deploy",
            created_at="2024-05-01T10:00:03.000000Z",
        ),
        make_run("a4", target="web", status="ok", created_at="2024-05-01T10:00:04.000000Z"),
        # Same instant as a4: the run id breaks the tie (descending).
        make_run("a5", target="db", status="ok", created_at="2024-05-01T10:00:04.000000Z"),
        # another host, and another state dir on this host
        make_run(
            "b1",
            target="cache",
            host="build-2",
            status="ok",
            created_at="2024-05-01T10:00:00.000000Z",
        ),
        make_run(
            "b2",
            target="cache",
            state_dir="/srv/other/.liftgate",
            created_at="2024-05-01T09:00:00.000000Z",
        ),
    ]
    for run in runs:
        store.create_run(run)

    def ids(found: list[RunRecord]) -> list[str]:
        return [r.run_id for r in found]

    assert ids(store.list_runs()) == ["a5", "a4", "a3", "a2", "a1", "b1", "b2"]
    assert store.list_runs()[0] == runs[4]
    assert ids(store.list_runs(host="build-2")) == ["b1"]
    assert ids(store.list_runs(state_dir="/srv/other/.liftgate")) == ["b2"]
    host, state_dir = "build-1", "/srv/liftgate/.liftgate"
    latest = store.list_runs(target="web", status="ok", host=host, state_dir=state_dir, limit=1)
    assert ids(latest) == ["a4"]
    assert ids(store.list_runs(host=host, state_dir=state_dir)) == ["a5", "a4", "a3", "a2", "a1"]
    assert ids(store.list_runs(target="web")) == ["a4", "a3", "a1"]
    assert ids(store.list_runs(status="failed")) == ["a3", "a2"]
    assert ids(store.list_runs(target="web", status="ok")) == ["a4", "a1"]
    assert ids(store.list_runs(limit=2)) == ["a5", "a4"]
    assert ids(store.list_runs(target="web", status="running")) == []
    assert ids(store.list_runs(target="db", limit=1)) == ["a5"]
    assert store.list_runs(target="nowhere") == []
    assert ids(store.list_runs(kind="odoo.deploy")) == ["a3"]
    assert ids(store.list_runs(target="web", kind="files", status="ok")) == ["a4", "a1"]
    assert store.list_runs(target="db", kind="odoo.deploy") == []


def test_finish_run_sets_outcome_and_timestamps(store: OpsStore) -> None:
    run = make_run("f1")
    store.create_run(run)
    store.finish_run("f1", status="ok", message="done", result={"copied": 3, "files": ["a"]})
    got = store.get_run("f1")
    assert got is not None
    assert (got.status, got.message, got.result) == ("ok", "done", {"copied": 3, "files": ["a"]})
    assert got.finished_at is not None and RFC3339.match(got.finished_at)
    assert got.updated_at == got.finished_at and got.updated_at > run.updated_at
    assert (got.created_at, got.plan) == (run.created_at, run.plan)


def test_finish_run_with_steps_appends_them_and_records_the_end(store: OpsStore) -> None:
    store.create_run(make_run("f2"))
    store.record_step("f2", "copy", "started")
    pending = [
        PendingStep(name="copy", state="done", at=T0, detail={"n": 2, "path": "/srv/é"}),
        PendingStep(name="history", state="started", at=T0, detail={}),
    ]
    store.finish_run("f2", status="ok", message="done", result={"n": 2}, steps=pending)
    got = store.get_run("f2")
    assert got is not None and (got.status, got.result) == ("ok", {"n": 2})
    steps = store.steps("f2")
    assert [(s.seq, s.name, s.state, s.detail) for s in steps] == [
        (1, "copy", "started", {}),
        (2, "copy", "done", {"n": 2, "path": "/srv/é"}),
        (3, "history", "started", {}),
    ]


def test_set_run_status_updates_status_message_and_updated_at(store: OpsStore) -> None:
    store.create_run(make_run("s1", message="started"))
    store.set_run_status("s1", "awaiting_approval", "needs a second pair of eyes")
    first = store.get_run("s1")
    assert first is not None
    assert (first.status, first.message) == ("awaiting_approval", "needs a second pair of eyes")
    assert RFC3339.match(first.updated_at) and first.updated_at > T0
    assert first.finished_at is None
    store.set_run_status("s1", "running")
    second = store.get_run("s1")
    assert second is not None
    assert (second.status, second.message) == ("running", "")
    assert second.updated_at >= first.updated_at
    assert second.created_at == T0


def test_closed_store_raises_store_error(spec: StoreSpec) -> None:
    store = spec.open()
    store.create_run(make_run("c1"))
    store.close()
    with pytest.raises(StoreError):
        store.get_run("c1")
    with pytest.raises(StoreError):
        store.set_run_status("c1", "ok")
    assert spec.open().get_run("c1") == make_run("c1")


# steps ------------------------------------------------------------------------------------
def test_steps_come_back_in_order_with_detail(store: OpsStore) -> None:
    store.create_run(make_run("st"))
    store.create_run(make_run("other"))
    detail = {"path": "/srv/é", "sizes": [1, 2, 3], "ok": True, "nested": {"y": None, "x": 0.5}}
    recorded = [
        store.record_step("st", "backup", "started"),
        store.record_step("st", "backup", "done", detail),
        store.record_step("other", "copy", "started", {"n": 1}),
        store.record_step("st", "copy", "failed", {"error": "disk full"}),
    ]
    assert [s.seq for s in recorded] == [1, 2, 1, 3]
    assert recorded[0] == StepRecord("st", 1, "backup", "started", recorded[0].at, {})
    assert all(RFC3339.match(s.at) for s in recorded)
    steps = store.steps("st")
    assert steps == [recorded[0], recorded[1], recorded[3]]
    assert steps[1].detail == detail
    assert store.steps("other") == [recorded[2]]
    assert store.steps("missing") == []


def test_record_step_from_concurrent_writers_keeps_unique_consecutive_seqs(
    spec: StoreSpec,
) -> None:
    spec.open().create_run(make_run("busy"))
    writers, per_writer = 6, 20
    barrier = threading.Barrier(writers)
    errors: list[BaseException] = []
    returned: list[StepRecord] = []

    def write(worker: int) -> None:
        # One store (one connection) per thread: the stores' own concurrency is under test.
        try:
            own = spec.open(track=False)
            try:
                barrier.wait()
                for i in range(per_writer):
                    returned.append(own.record_step("busy", f"w{worker}", "done", {"i": i}))
            finally:
                own.close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    steps = spec.open().steps("busy")
    assert [s.seq for s in steps] == list(range(1, writers * per_writer + 1))
    assert sorted(s.seq for s in returned) == [s.seq for s in steps]
    for w in range(writers):
        mine = [s.detail["i"] for s in steps if s.name == f"w{w}"]
        assert mine == list(range(per_writer))  # each writer's steps in its own order


# history heads ----------------------------------------------------------------------------
def test_history_head_absent_then_set_then_replaced(store: OpsStore) -> None:
    assert store.history_head("web") is None
    store.set_history_head("web", "sha256:aaa", 1)
    first = store.history_head("web")
    assert first is not None
    assert (first.key, first.head, first.count) == ("web", "sha256:aaa", 1)
    assert RFC3339.match(first.updated_at)
    store.set_history_head("web", "sha256:bbb", 2)
    second = store.history_head("web")
    assert second is not None
    assert (second.head, second.count) == ("sha256:bbb", 2)
    assert second.updated_at >= first.updated_at
    assert store.history_head("db") is None


# locks ------------------------------------------------------------------------------------
def test_lock_held_by_another_process_fails_at_once(spec: StoreSpec, store: OpsStore) -> None:
    with Holder(spec, "target:web", hold=60) as holder:
        holder.expect("held")
        assert_locked_at_once(store, "target:web")
        assert_locked_at_once(store, "target:web", wait=0)
        with store.lock("target:db"):  # another name is free
            pass
        assert holder.proc.poll() is None


def test_lock_waits_for_the_holder_to_release(spec: StoreSpec, store: OpsStore) -> None:
    with Holder(spec, "target:web", hold=0.6, linger=30) as holder:
        holder.expect("held")
        started = time.monotonic()
        with store.lock("target:web", wait=2):
            waited = time.monotonic() - started
            # Released by leaving its context, not by dying: the holder is still alive.
            assert holder.proc.poll() is None
        holder.expect("released")
    assert 0.2 < waited < 2


def test_lock_wait_gives_up_after_wait_seconds(spec: StoreSpec, store: OpsStore) -> None:
    with Holder(spec, "target:web", hold=60) as holder:
        holder.expect("held")
        started = time.monotonic()
        with (
            pytest.raises(LockedError, match=r"holds the lock on target:web \(waited"),
            store.lock("target:web", wait=0.4),
        ):
            pytest.fail("took a lock another process holds")
        assert 0.4 <= time.monotonic() - started < 2


def test_lock_of_a_killed_holder_is_released(spec: StoreSpec, store: OpsStore) -> None:
    with Holder(spec, "target:web", hold=600) as holder:
        holder.expect("held")
        assert_locked_at_once(store, "target:web")
        os.kill(holder.proc.pid, signal.SIGKILL)
        assert holder.close() == -signal.SIGKILL
    with Holder(spec, "target:web", hold=0, wait=5) as successor:
        successor.expect("held")
        successor.expect("released")
        assert successor.proc.wait(timeout=30) == 0


def test_lock_is_released_after_context_exit(spec: StoreSpec, store: OpsStore) -> None:
    other = spec.open()
    with store.lock("target:web"):
        assert_locked_at_once(other, "target:web")  # another store of this process
        assert_locked_at_once(store, "target:web")  # not reentrant either
    with other.lock("target:web"):
        pass
    with pytest.raises(RuntimeError, match="boom"), store.lock("target:web"):
        raise RuntimeError("boom")
    with Holder(spec, "target:web", hold=0) as holder:  # and another process
        holder.expect("held")
        holder.expect("released")
        assert holder.proc.wait(timeout=30) == 0


# schema -----------------------------------------------------------------------------------
def test_schema_is_created_idempotently(spec: StoreSpec) -> None:
    first = spec.open()
    first.create_run(make_run("kept"))
    first.set_history_head("web", "h", 3)
    second = spec.open()  # opens the existing schema, keeps what is there
    assert second.get_run("kept") == make_run("kept")
    second.create_run(make_run("added"))
    assert [r.run_id for r in first.list_runs()] == ["kept", "added"]  # same instant: id desc
    head = second.history_head("web")
    assert head is not None and head.count == 3


def test_postgres_stores_starting_at_once_create_the_schema_once(pg_dsn: str) -> None:
    # The DDL runs under an advisory lock: concurrent first starts must not collide.
    starters = 8
    barrier = threading.Barrier(starters)
    errors: list[BaseException] = []

    def start(n: int) -> None:
        try:
            barrier.wait()
            own = PostgresStore(pg_dsn)
            try:
                own.set_history_head(f"k{n}", "h", n)
            finally:
                own.close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(n,)) for n in range(starters)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    store = PostgresStore(pg_dsn)
    try:
        heads = [store.history_head(f"k{n}") for n in range(starters)]
    finally:
        store.close()
    assert [h.count for h in heads if h is not None] == list(range(starters))


def test_postgres_schema_lives_in_ops(pg_dsn: str) -> None:
    store = PostgresStore(pg_dsn)
    try:
        with psycopg.connect(pg_dsn) as conn:
            rows = conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema='ops' "
                "ORDER BY table_name"
            ).fetchall()
            types = conn.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema='ops' AND data_type='jsonb' ORDER BY column_name"
            ).fetchall()
    finally:
        store.close()
    assert rows == [("approvals",), ("history_heads",), ("runs",), ("steps",)]
    assert types == [("args",), ("detail",), ("plan",), ("result",)]


# approvals --------------------------------------------------------------------------------
T_LATER = "2024-05-02T10:00:00.000000Z"  # expires_at of the approvals below
T_AFTER = "2024-05-03T00:00:00.000000Z"  # past it


def make_approval(approval_id: str, **changes: Any) -> ApprovalRecord:
    approval = ApprovalRecord(
        approval_id=approval_id,
        tool="stage_promote_safe",
        args={"target": "docs/a.md", "staged": "staged/a.md", "force": False, "nested": [1, {}]},
        args_sha256="ab" * 32,
        env=None,
        production=False,
        host="build-1",
        summary="promote staged/a.md onto docs/a.md",
        status="pending",
        created_at=T0,
        expires_at=T_LATER,
    )
    return approval._replace(**changes)


def test_create_and_get_approval_round_trips_every_field(store: OpsStore) -> None:
    full = make_approval(
        "apr-1",
        env="prod",
        production=True,
        status="used",
        approved_by="alice",
        approved_at="2024-05-01T10:00:01.000000Z",
        used_at="2024-05-01T10:00:02.000000Z",
        run_id="20240501-100002-abcdef",
        args={"é": "✓", "b": [1, 2.5, None, True]},
    )
    store.create_approval(full)
    store.create_approval(make_approval("apr-2"))
    assert store.get_approval("apr-1") == full
    assert store.get_approval("apr-2") == make_approval("apr-2")
    assert store.get_approval("apr-missing") is None


def test_duplicate_approval_id_raises_store_error(store: OpsStore) -> None:
    store.create_approval(make_approval("apr-dup", summary="first"))
    with pytest.raises(StoreError, match=r"^approval apr-dup already exists in the ops store$"):
        store.create_approval(make_approval("apr-dup", summary="second"))
    got = store.get_approval("apr-dup")
    assert got is not None and got.summary == "first"


def test_approve_moves_only_a_pending_unexpired_approval(store: OpsStore) -> None:
    store.create_approval(make_approval("apr-a"))
    store.create_approval(make_approval("apr-late"))
    assert store.approve("apr-a", user="alice", at="2024-05-01T11:00:00.000000Z")
    got = store.get_approval("apr-a")
    assert got is not None
    assert (got.status, got.approved_by, got.approved_at) == (
        "approved",
        "alice",
        "2024-05-01T11:00:00.000000Z",
    )
    # a second approval changes nothing: the first approver stays recorded
    assert not store.approve("apr-a", user="mallory", at="2024-05-01T12:00:00.000000Z")
    assert store.get_approval("apr-a") == got
    assert not store.approve("apr-late", user="alice", at=T_AFTER)  # expired meanwhile
    late = store.get_approval("apr-late")
    assert late is not None and late.status == "pending" and late.approved_by is None
    assert not store.approve("apr-missing", user="alice", at=T0)


def test_consume_needs_approved_same_call_unexpired_and_is_single_use(store: OpsStore) -> None:
    digest = "ab" * 32
    store.create_approval(make_approval("apr-c"))
    at = "2024-05-01T11:00:00.000000Z"
    # still pending: not usable
    assert not store.consume_approval(
        "apr-c", tool="stage_promote_safe", args_sha256=digest, run_id="r", at=at
    )
    assert store.approve("apr-c", user="alice", at=at)
    # another tool or other arguments: refused, and the approval stays usable
    assert not store.consume_approval(
        "apr-c", tool="backup_odoo_environment", args_sha256=digest, run_id="r", at=at
    )
    assert not store.consume_approval(
        "apr-c", tool="stage_promote_safe", args_sha256="cd" * 32, run_id="r", at=at
    )
    assert not store.consume_approval(
        "apr-c", tool="stage_promote_safe", args_sha256=digest, run_id="r", at=T_AFTER
    )
    assert store.consume_approval(
        "apr-c", tool="stage_promote_safe", args_sha256=digest, run_id="r-1", at=at
    )
    got = store.get_approval("apr-c")
    assert got is not None
    assert (got.status, got.run_id, got.used_at, got.approved_by) == ("used", "r-1", at, "alice")
    assert not store.consume_approval(
        "apr-c", tool="stage_promote_safe", args_sha256=digest, run_id="r-2", at=at
    )
    again = store.get_approval("apr-c")
    assert again is not None and again.run_id == "r-1"


def test_consume_from_concurrent_callers_lets_exactly_one_through(spec: StoreSpec) -> None:
    first = spec.open()
    first.create_approval(make_approval("apr-race"))
    assert first.approve("apr-race", user="alice", at="2024-05-01T11:00:00.000000Z")
    callers = 8
    barrier = threading.Barrier(callers)
    errors: list[BaseException] = []
    won: list[str] = []

    def consume(n: int) -> None:
        try:
            own = spec.open(track=False)
            try:
                barrier.wait()
                if own.consume_approval(
                    "apr-race",
                    tool="stage_promote_safe",
                    args_sha256="ab" * 32,
                    run_id=f"r-{n}",
                    at="2024-05-01T11:00:01.000000Z",
                ):
                    won.append(f"r-{n}")
            finally:
                own.close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=consume, args=(n,)) for n in range(callers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert len(won) == 1
    got = first.get_approval("apr-race")
    assert got is not None and got.status == "used" and got.run_id == won[0]


def test_expire_approvals_marks_only_pending_and_approved_past_their_time(
    store: OpsStore,
) -> None:
    store.create_approval(make_approval("apr-p"))
    store.create_approval(make_approval("apr-ap"))
    store.create_approval(make_approval("apr-u", status="used", run_id="r"))
    store.create_approval(make_approval("apr-future", expires_at="2024-06-01T00:00:00.000000Z"))
    assert store.approve("apr-ap", user="alice", at=T0)
    assert store.expire_approvals(T0) == 0
    assert store.expire_approvals(T_AFTER) == 2
    statuses = {a.approval_id: a.status for a in store.list_approvals()}
    assert statuses == {
        "apr-p": "expired",
        "apr-ap": "expired",
        "apr-u": "used",
        "apr-future": "pending",
    }
    assert store.expire_approvals(T_AFTER) == 0
    ap = store.get_approval("apr-ap")
    assert ap is not None and ap.approved_by == "alice"  # who approved it stays recorded


def test_list_approvals_newest_first_with_status_and_limit(store: OpsStore) -> None:
    store.create_approval(make_approval("apr-1", created_at="2024-05-01T10:00:01.000000Z"))
    store.create_approval(make_approval("apr-2", created_at="2024-05-01T10:00:02.000000Z"))
    store.create_approval(make_approval("apr-3", created_at="2024-05-01T10:00:02.000000Z"))
    store.create_approval(
        make_approval("apr-4", created_at="2024-05-01T10:00:03.000000Z", status="used")
    )

    def ids(found: list[ApprovalRecord]) -> list[str]:
        return [a.approval_id for a in found]

    assert ids(store.list_approvals()) == ["apr-4", "apr-3", "apr-2", "apr-1"]
    assert ids(store.list_approvals(status="pending")) == ["apr-3", "apr-2", "apr-1"]
    assert ids(store.list_approvals(status="pending", limit=2)) == ["apr-3", "apr-2"]
    assert store.list_approvals(status="expired") == []
    assert store.list_approvals()[0] == make_approval(
        "apr-4", created_at="2024-05-01T10:00:03.000000Z", status="used"
    )


def test_store_created_before_approvals_gets_the_table(spec: StoreSpec) -> None:
    """An ops store made by an older liftgate (no approvals table) gains it when opened."""
    old = spec.open()
    old.create_run(make_run("kept"))
    if spec.kind == "sqlite":
        with sqlite3.connect(spec.params["path"]) as conn:
            conn.execute("DROP TABLE approvals")
    else:
        with psycopg.connect(spec.params["dsn"], autocommit=True) as conn:
            conn.execute("DROP TABLE ops.approvals")
    new = spec.open()
    new.create_approval(make_approval("apr-new"))
    assert new.get_approval("apr-new") == make_approval("apr-new")
    assert new.get_run("kept") == make_run("kept")


# both stores ------------------------------------------------------------------------------
def _scenario(store: OpsStore) -> dict[str, Any]:
    """The same calls on any store; what it returns, with store-made timestamps masked."""
    store.create_run(make_run("x1", plan={"zeta": 1, "alpha": {"b": 2, "a": [3, {"d": 4}]}}))
    store.create_run(make_run("x2", target="db", created_at="2024-05-02T00:00:00.000000Z"))
    store.record_step("x1", "backup", "started")
    store.record_step("x1", "backup", "done", {"sha256": "abc", "bytes": 10, "ratio": 0.25})
    store.finish_run("x1", status="ok", message="promoted", result={"b": [], "a": "é"})
    store.set_run_status("x2", "failed", "copy failed")
    store.set_history_head("web", "sha256:abc", 7)
    store.create_approval(make_approval("apr-x1", args={"zeta": [2, {"b": 1, "a": 0}], "a": "é"}))
    store.create_approval(make_approval("apr-x2", env="prod", production=True))
    store.approve("apr-x1", user="alice", at="2024-05-01T11:00:00.000000Z")
    store.consume_approval(
        "apr-x1",
        tool="stage_promote_safe",
        args_sha256="ab" * 32,
        run_id="x1",
        at="2024-05-01T11:00:01.000000Z",
    )

    def mask(record: Any) -> str:
        data = record._asdict()
        for key in ("at", "updated_at", "finished_at"):
            if data.get(key) is not None and data[key] != T0:
                assert RFC3339.match(data[key])
                data[key] = "<now>"
        return json.dumps(data, ensure_ascii=False)  # keeps key order: it must match too

    return {
        "runs": [mask(r) for r in store.list_runs()],
        "get": mask(store.get_run("x1")),
        "steps": [mask(s) for s in store.steps("x1")],
        "head": mask(store.history_head("web")),
        "approvals": [mask(a) for a in store.list_approvals()],
    }


def test_both_stores_return_identical_records(tmp_path: Path, pg_dsn: str) -> None:
    lite = SqliteStore(tmp_path / "ops.sqlite", tmp_path / "locks")
    pg = PostgresStore(pg_dsn)
    try:
        from_sqlite, from_postgres = _scenario(lite), _scenario(pg)
    finally:
        lite.close()
        pg.close()
    assert from_sqlite == from_postgres
    assert '"plan": {"alpha": {"a": [3, {"d": 4}], "b": 2}, "zeta": 1}' in from_sqlite["get"]


# sqlite only: the query every mutating command makes ---------------------------------------
def test_sqlite_finds_a_targets_running_runs_without_reading_its_finished_ones(
    tmp_path: Path,
) -> None:
    # Every promotion first asks for the interrupted runs of its target; a target promoted
    # a thousand times must not make that question read a thousand rows.
    store = SqliteStore(tmp_path / "ops.sqlite", tmp_path / "locks")
    try:
        for n in range(200):
            store.create_run(make_run(f"r{n:03d}", status="ok"))
        store.create_run(make_run("live"))
        statements: list[str] = []
        store._db.set_trace_callback(statements.append)
        found = store.list_runs(
            target="web", status="running", host="build-1", state_dir="/srv/liftgate/.liftgate"
        )
        store._db.set_trace_callback(None)
        plan = store._db.execute("EXPLAIN QUERY PLAN " + statements[-1]).fetchall()
    finally:
        store.close()
    assert [r.run_id for r in found] == ["live"]
    details = [row[-1] for row in plan]
    assert details == ["SEARCH runs USING INDEX runs_target_status (target=? AND status=?)"]


# postgres only: secrets -------------------------------------------------------------------
@pytest.mark.parametrize(
    "dsn",
    [
        "host=/nonexistent/dir port=1 dbname=opsdb user=ops password=Sekrit-Pa55",
        "postgresql://ops:Sekrit-Pa55@localhost:1/opsdb",
        "host=/x dbname=opsdb password Sekrit-Pa55",  # not even a valid DSN
        "host=/x dbname=opsdb password='Sekrit-Pa55",
    ],
)
def test_postgres_errors_never_show_the_password(dsn: str) -> None:
    with pytest.raises(StoreError) as info:
        PostgresStore(dsn)
    shown = f"{info.value.message} {info.value.hint}"
    assert "Sekrit-Pa55" not in shown
    assert "opsdb" in shown or "not a valid libpq connection string" in shown


def test_postgres_store_description_hides_the_password(pg_dsn: str) -> None:
    # The test cluster trusts local connections, so a password is accepted and ignored.
    store = PostgresStore(f"{pg_dsn} password=Sekrit-Pa55")
    try:
        store.set_history_head("k", "h", 1)
        assert "Sekrit-Pa55" not in store.where
        assert store.history_head("k") is not None
    finally:
        store.close()


def test_postgres_lost_connection_raises_store_error(pg_dsn: str, pg_cluster: PgCluster) -> None:
    store = PostgresStore(pg_dsn)
    dbname = psycopg.conninfo.conninfo_to_dict(pg_dsn)["dbname"]
    try:
        with psycopg.connect(pg_cluster.dsn, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (dbname,),
            )
        with pytest.raises(StoreError, match=r"^cannot read the PostgreSQL ops store t_"):
            store.get_run("x")
    finally:
        store.close()
