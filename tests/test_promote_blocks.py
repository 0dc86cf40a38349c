"""Building blocks of a blue-green promotion, against PostgreSQL as an ordinary owner role:
freezing a database read-only, copying it into the inactive slot, watching the public URL
after a cutover, and carrying production's identity and outgoing side effects to green."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from liftgate.errors import OperationError, VerificationError
from liftgate.odoo.env import OdooEnv
from liftgate.odoo.freeze import (
    end_sessions,
    freeze,
    is_frozen,
    unfreeze,
    write_counters,
    writes_since,
)
from liftgate.odoo.identity import (
    apply_identity,
    read_identity,
    read_outgoing,
    restore_outgoing,
    same_identity,
)
from liftgate.odoo.neutralize import neutralize, new_identity
from liftgate.odoo.slotcopy import (
    copy_dump,
    copy_filestore,
    copy_template,
    database_size,
    drop_database,
)
from liftgate.odoo.watch import percentile, watch
from liftgate.sandbox.cluster import PgCluster
from liftgate.sandbox.odoo_sample import populate, table_snapshot
from liftgate.sandbox.odoo_schema import create_schema
from support.odoo_project import OdooProject, make_odoo_project

Conn = psycopg.Connection[Any]


@pytest.fixture(scope="module")
def odoo(tmp_path_factory: pytest.TempPathFactory, pg_cluster: PgCluster) -> OdooProject:
    """One Odoo-shaped production database, owned by an ordinary LOGIN CREATEDB role; tests
    work on copies of it (``clone``)."""
    return make_odoo_project(tmp_path_factory.mktemp("blocks") / "proj", pg_cluster)


@pytest.fixture
def clone(odoo: OdooProject) -> Iterator[Callable[[], str]]:
    """Make a fresh copy of production (owned by the role); all are dropped afterwards."""
    made: list[str] = []

    def make() -> str:
        name = f"c_{uuid.uuid4().hex[:10]}"
        with odoo.admin() as su:
            su.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {} OWNER {} STRATEGY WAL_LOG").format(
                    sql.Identifier(name), sql.Identifier(odoo.prod_db), sql.Identifier(odoo.role)
                )
            )
        made.append(name)
        return name

    yield make
    with odoo.admin() as su:
        for name in made:
            su.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture
def admin(odoo: OdooProject) -> Iterator[Conn]:
    """A maintenance connection AS THE ROLE (not a superuser), like liftgate's own."""
    with psycopg.connect(odoo.conninfo("postgres"), autocommit=True) as conn:
        row = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
        assert row is not None and row[0] is False
        yield conn


def _connect(odoo: OdooProject, db: str, **kwargs: Any) -> Conn:
    return psycopg.connect(odoo.conninfo(db), **kwargs)


def _allows_connections(admin: Conn, db: str) -> bool:
    row = admin.execute("SELECT datallowconn FROM pg_database WHERE datname = %s", (db,)).fetchone()
    assert row is not None
    return bool(row[0])


# -- freeze ---------------------------------------------------------------------------------


def test_freeze_as_owner_role_refuses_writes_keeps_reads(
    odoo: OdooProject, clone: Callable[[], str], admin: Conn
) -> None:
    db = clone()
    idle = _connect(odoo, db, autocommit=True)  # an Odoo worker's pooled session
    in_flight = _connect(odoo, db)  # a request in the middle of its transaction
    in_flight.execute("UPDATE res_partner SET name = 'lost?' WHERE id = 5")
    assert not is_frozen(admin, db)

    info = freeze(admin, db)
    assert info.sessions_ended == 2 and not info.was_frozen and info.seconds < 5
    assert is_frozen(admin, db)
    # the old sessions are gone: the uncommitted write fails loudly, nothing was kept
    with pytest.raises(psycopg.OperationalError):
        in_flight.commit()
    with pytest.raises(psycopg.OperationalError):
        idle.execute("SELECT 1")
    in_flight.close()
    idle.close()
    with _connect(odoo, db, autocommit=True) as conn:
        assert conn.execute("SHOW default_transaction_read_only").fetchone() == ("on",)
        assert conn.execute("SELECT name FROM res_partner WHERE id = 5").fetchone() != ("lost?",)
        for statement in (
            "UPDATE res_partner SET name = 'x' WHERE id = 5",
            "INSERT INTO ir_config_parameter (key, value) VALUES ('k', 'v')",
            "DELETE FROM mail_message",
            "CREATE TABLE t (a int)",
            "SELECT id FROM ir_cron FOR NO KEY UPDATE SKIP LOCKED",  # how Odoo's crons start
        ):
            with pytest.raises(psycopg.errors.ReadOnlySqlTransaction) as caught:
                conn.execute(statement)
            assert caught.value.sqlstate == "25006"
        assert conn.execute("SELECT count(*) FROM res_partner").fetchone() == (
            odoo.populated.partners + 4,
        )
        # documented escape hatch (Odoo never uses it): a session may lift it for itself
        conn.execute("SET default_transaction_read_only = off")
        conn.execute("SELECT 1")

        # idempotent: freezing again ends the sessions that started before it, verifies again
        again = freeze(admin, db)
        assert again.was_frozen and again.sessions_ended == 1
    reader = _connect(odoo, db, autocommit=True)  # started frozen: a read-only pooled session
    unfreeze(admin, db)
    assert not is_frozen(admin, db)
    with pytest.raises(psycopg.OperationalError):
        reader.execute("SELECT 1")  # ended, so the pool reconnects writable
    reader.close()
    with _connect(odoo, db, autocommit=True) as conn:
        assert conn.execute("SHOW default_transaction_read_only").fetchone() == ("off",)
        conn.execute("UPDATE res_partner SET name = 'written' WHERE id = 5")
        unfreeze(admin, db)  # not frozen: a no-op, this session survives it
        assert conn.execute("SELECT name FROM res_partner WHERE id = 5").fetchone() == ("written",)
        unfreeze(admin, db, force=True)  # recovery: end the sessions anyway
        with pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT 1")
    unfreeze(admin, "no_such_database")
    assert not is_frozen(admin, "no_such_database")


def test_freeze_refuses_when_a_session_cannot_be_ended(
    odoo: OdooProject, clone: Callable[[], str], admin: Conn
) -> None:
    db = clone()
    with psycopg.connect(odoo.conninfo(db, as_role=False), autocommit=True):  # a superuser's
        with pytest.raises(OperationError, match="could not be ended"):
            freeze(admin, db)
        assert not is_frozen(admin, db)  # the setting it added was taken back
    with pytest.raises(OperationError, match="does not exist"):
        freeze(admin, "no_such_database")


def test_write_counters_count_other_sessions_exactly_once_they_ended(
    odoo: OdooProject, clone: Callable[[], str], admin: Conn
) -> None:
    db = clone()

    def reading(**kwargs: Any) -> dict[str, int]:
        with _connect(odoo, db, autocommit=True) as reader:
            return write_counters(reader, **kwargs)

    before = reading()
    assert before["writes"] >= 0 and before["datid"] > 0
    writer = _connect(odoo, db, autocommit=True)
    writer.execute("UPDATE res_partner SET color = 1 WHERE id <= 10")  # 10 updates
    writer.execute("INSERT INTO ir_config_parameter (key, value) VALUES ('a', '1')")
    writer.execute("DELETE FROM ir_config_parameter WHERE key = 'a'")
    with pytest.raises(psycopg.errors.UniqueViolation):  # rolled back: counted anyway
        writer.execute("INSERT INTO ir_config_parameter (key, value) VALUES ('web.base.url', '')")
    # the writer stays connected and idle: its counts may still be pending (up to 10 s);
    # freeze ends it (waiting for it), and a backend flushes its counts as it exits
    freeze(admin, db)
    after = reading()
    assert writes_since(before, after) == 13
    assert after["n_tup_upd"] - before["n_tup_upd"] == 10
    writer.close()
    # refused writes on the frozen database write nothing
    with (
        _connect(odoo, db, autocommit=True) as frozen,
        pytest.raises(psycopg.errors.ReadOnlySqlTransaction),
    ):
        frozen.execute("UPDATE res_partner SET color = 2")
    settled = reading(settle=0.3, interval=0.1)
    assert writes_since(after, settled) == 0
    # a session that disconnected: its counts are in once its backend left pg_stat_activity
    # (close() does not wait for that); one transaction may read repeatedly
    unfreeze(admin, db)
    with _connect(odoo, db) as reader:
        first = write_counters(reader)
        with _connect(odoo, db, autocommit=True) as other:
            pid = other.info.backend_pid
            other.execute("UPDATE res_partner SET color = 3 WHERE id <= 4")
            other.execute("UPDATE res_partner SET color = 4 WHERE id <= 4")
        deadline = time.monotonic() + 10
        while admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone():
            assert time.monotonic() < deadline
            time.sleep(0.005)
        assert writes_since(first, write_counters(reader)) == 8
    with (
        _connect(odoo, odoo.prod_db) as elsewhere,
        pytest.raises(VerificationError, match="different databases"),
    ):
        writes_since(before, write_counters(elsewhere))
    with pytest.raises(VerificationError, match="went down"):
        writes_since(after, before)


def test_end_sessions_reports_what_it_cannot_end(
    odoo: OdooProject, clone: Callable[[], str], admin: Conn
) -> None:
    db = clone()
    with (
        _connect(odoo, db, autocommit=True),
        psycopg.connect(odoo.conninfo(db, as_role=False), autocommit=True),
    ):
        result = end_sessions(admin, db)
        assert result.ended == 1
        assert len(result.not_ended) == 1 and "superuser" in result.not_ended[0]


# -- slot copies ----------------------------------------------------------------------------


def _hammer_connections(
    odoo: OdooProject, db: str, stop: threading.Event, refusals: list[str], oks: list[float]
) -> None:
    while not stop.is_set():
        try:
            with psycopg.connect(odoo.conninfo(db), connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            oks.append(time.monotonic())
        except psycopg.OperationalError as exc:
            refusals.append(str(exc))
        time.sleep(0.002)


def test_copy_template_gives_an_equal_unfrozen_copy_with_a_measured_outage(
    odoo: OdooProject, clone: Callable[[], str], admin: Conn
) -> None:
    src = clone()
    freeze(admin, src)  # blue is frozen while it is copied
    holder = _connect(odoo, src, autocommit=True)  # a session that must be ended
    stop = threading.Event()
    refusals: list[str] = []
    oks: list[float] = []
    hammer = threading.Thread(
        target=_hammer_connections, args=(odoo, src, stop, refusals, oks), daemon=True
    )
    hammer.start()
    copies = [f"{src}_green", f"{src}_wal"]
    try:
        time.sleep(0.05)
        report = copy_template(admin, src, copies[0])
        time.sleep(0.05)
        stop.set()
        hammer.join()
        assert report.strategy == "template" and report.dst_db == copies[0]
        assert report.detail["sessions_ended"] >= 1
        assert report.detail["pg_strategy"] == "file_copy" and report.detail["attempts"] == 1
        assert 0 < report.outage_seconds <= report.seconds
        assert report.bytes == database_size(admin, copies[0]) > 1_000_000
        # connections were refused meanwhile, and work again afterwards
        assert any("not currently accepting connections" in r for r in refusals), refusals[:3]
        assert oks and oks[-1] > time.monotonic() - 0.5
        assert _allows_connections(admin, src) and is_frozen(admin, src)
        assert table_snapshot(odoo.conninfo(copies[0])) == table_snapshot(odoo.conninfo(src))
        assert not is_frozen(admin, copies[0])  # a freeze is not copied: green is writable
        with _connect(odoo, copies[0], autocommit=True) as conn:
            conn.execute("UPDATE res_partner SET name = 'green' WHERE id = 5")
        print(f"\ncopy_template: {report.as_dict()}")
        report = copy_template(admin, src, copies[1], strategy="wal_log")
        assert report.detail["pg_strategy"] == "wal_log" and not is_frozen(admin, copies[1])
        print(f"copy_template wal_log: {report.as_dict()}")
    finally:
        stop.set()
        hammer.join()
        holder.close()
        for copy in copies:
            drop_database(admin, copy)
    assert drop_database(admin, copies[0]) is False


def test_copy_template_failure_lets_connections_back_and_keeps_existing_dst(
    odoo: OdooProject, clone: Callable[[], str], admin: Conn
) -> None:
    src, dst = clone(), clone()
    with _connect(odoo, dst, autocommit=True) as conn:
        conn.execute("UPDATE res_partner SET name = 'dst was here' WHERE id = 5")
    with pytest.raises(OperationError, match="already exists"):
        copy_template(admin, src, dst)
    assert _allows_connections(admin, src)
    with _connect(odoo, dst) as conn:  # the existing database was not dropped
        assert conn.execute("SELECT name FROM res_partner WHERE id = 5").fetchone() == (
            "dst was here",
        )
    # a session copy_template may not end (a superuser's) keeps src busy: refused, undone
    with (
        psycopg.connect(odoo.conninfo(src, as_role=False), autocommit=True),
        pytest.raises(OperationError, match="stayed connected"),
    ):
        copy_template(admin, src, f"{src}_x", attempts=2)
    assert _allows_connections(admin, src)


def _env(odoo: OdooProject, db: str) -> OdooEnv:
    params = {
        k: str(v)
        for k, v in conninfo_to_dict(odoo.conninfo(db)).items()
        if k != "dbname" and v is not None
    }
    return OdooEnv(
        name="prod",
        role="production",
        db=db,
        filestore=odoo.prod_filestore,
        neutralize=False,
        params=params,
        password=None,
    )


def test_copy_dump_keeps_readers_working_and_gives_an_equal_unfrozen_copy(
    odoo: OdooProject, clone: Callable[[], str], admin: Conn, tmp_path: Path
) -> None:
    src = clone()
    freeze(admin, src)
    dst = f"{src}_dump"
    stop = threading.Event()
    reads: list[int] = []
    errors: list[str] = []

    def reader() -> None:
        with _connect(odoo, src, autocommit=True) as conn:
            while not stop.is_set():
                try:
                    row = conn.execute("SELECT count(*) FROM res_partner").fetchone()
                    reads.append(int(row[0]) if row else -1)
                except psycopg.Error as exc:
                    errors.append(str(exc))
                    return
                time.sleep(0.005)

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    time.sleep(0.05)
    try:
        before = len(reads)
        report = copy_dump(_env(odoo, src), src, dst, jobs=2, workdir=tmp_path)
        during = len(reads) - before
    finally:
        stop.set()
        thread.join()
    try:
        assert not errors and during > 5, (errors, during)
        assert report.strategy == "dump" and report.outage_seconds == 0
        assert report.detail["jobs"] == 2 and report.bytes > 1_000_000
        assert table_snapshot(odoo.conninfo(dst)) == table_snapshot(odoo.conninfo(src))
        assert is_frozen(admin, src) and not is_frozen(admin, dst)
        assert list(tmp_path.iterdir()) == []  # the dump folder is gone
        print(f"\ncopy_dump: {report.as_dict()}")
        with pytest.raises(OperationError, match="already exists"):
            copy_dump(_env(odoo, src), src, dst, jobs=1, workdir=tmp_path)
        assert table_snapshot(odoo.conninfo(dst)) == table_snapshot(odoo.conninfo(src))
    finally:
        drop_database(admin, dst)


def test_copy_filestore_hard_links(odoo: OdooProject, tmp_path: Path) -> None:
    dst = tmp_path / "green"
    info = copy_filestore(odoo.prod_filestore, dst)
    assert info["method"] == "link" and info["files"] > 0 and info["bytes"] > 0
    names = sorted(
        str(Path(d, f).relative_to(odoo.prod_filestore))
        for d, _, fs in os.walk(odoo.prod_filestore)
        for f in fs
    )
    assert len(names) == info["files"]
    for name in names:
        assert os.stat(odoo.prod_filestore / name).st_ino == os.stat(dst / name).st_ino
    with pytest.raises(OperationError, match="already exists"):
        copy_filestore(odoo.prod_filestore, dst)
    with pytest.raises(OperationError, match="not a folder"):
        copy_filestore(tmp_path / "missing", tmp_path / "other")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["green"]  # no temp folder left


# -- watch ----------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    server: _Site

    def do_GET(self) -> None:
        site = self.server
        if site.delay:
            time.sleep(site.delay)
        status, body = 200, b"<html>Odoo</html>"
        if self.path == "/web/health":
            body = json.dumps({"status": site.health}).encode()
        if site.failing:
            status, body = 502, b"bad gateway"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        site.hits.append(self.path)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Site(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.failing = False
        self.delay = 0.0
        self.health = "pass"
        self.hits: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def site() -> Iterator[_Site]:
    server = _Site()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _later(seconds: float, action: Callable[[], None]) -> threading.Timer:
    timer = threading.Timer(seconds, action)
    timer.start()
    return timer


def test_watch_stable_window_is_respected(site: _Site) -> None:
    started = time.monotonic()
    report = watch(
        site.url,
        window=1.0,
        interval=0.1,
        max_error_rate=0.0,
        max_p95_ms=500,
        paths=["/web/login"],
    )
    elapsed = time.monotonic() - started
    assert report.verdict == "stable" and report.stable, report.reason
    assert 1.0 <= elapsed < 1.6 and 1.0 <= report.seconds < 1.6
    # 11 rounds (t = 0, 0.1 ... 1.0) of 2 requests; a round running late is skipped
    assert 16 <= report.samples <= 22 and report.failures == 0 and report.error_rate == 0
    assert not report.stopped_early
    assert report.p50_ms is not None and report.p95_ms is not None and report.max_ms is not None
    assert report.p50_ms <= report.p95_ms <= report.max_ms < 500
    assert {e["path"] for e in report.entries} == {"/web/health", "/web/login"}
    assert all(e["status"] == 200 for e in report.entries)
    assert site.hits.count("/web/health") == report.samples // 2
    out = report.as_dict()
    json.dumps(out)
    assert out["verdict"] == "stable" and len(out["entries"]) == report.samples


def test_watch_detects_failures_early_with_a_clear_reason(site: _Site) -> None:
    timer = _later(0.3, lambda: setattr(site, "failing", True))
    started = time.monotonic()
    report = watch(site.url, window=10.0, interval=0.05, max_error_rate=0.5, max_p95_ms=1000)
    timer.join()
    assert report.verdict == "unstable" and report.stopped_early
    assert time.monotonic() - started < 2.0
    assert "3 consecutive failures" in report.reason and "HTTP 502" in report.reason
    assert report.entries[-1]["status"] == 502 and report.entries[0]["status"] == 200


def test_watch_detects_error_rate_and_bad_health(site: _Site) -> None:
    site.health = "fail"  # 200 but not {"status": "pass"}
    report = watch(
        site.url,
        window=2.0,
        interval=0.02,
        max_error_rate=0.2,
        max_p95_ms=1000,
        paths=["/web/login", "/shop", "/contactus"],  # health fails, the others pass
        max_consecutive_failures=10,
    )
    assert report.verdict == "unstable" and report.stopped_early
    # judged from the 5th sample on: F . . . F
    assert report.reason.startswith("error rate 40.0% over 5 samples exceeds 20.0%")
    assert "health status 'fail'" in report.reason


def test_watch_detects_slow_answers_by_p95(site: _Site) -> None:
    site.delay = 0.06
    report = watch(site.url, window=5.0, interval=0.01, max_error_rate=0.0, max_p95_ms=40)
    assert report.verdict == "unstable" and report.stopped_early
    assert report.samples == 10 and report.failures == 0
    assert report.reason.startswith("p95 latency") and "exceeds 40 ms" in report.reason
    assert report.p95_ms is not None and report.p95_ms >= 60


def test_watch_without_stop_early_runs_the_whole_window(site: _Site) -> None:
    timer = _later(0.5, lambda: setattr(site, "failing", True))
    started = time.monotonic()
    report = watch(
        site.url, window=1.0, interval=0.1, max_error_rate=0.0, max_p95_ms=1000, stop_early=False
    )
    timer.join()
    assert time.monotonic() - started >= 1.0 and not report.stopped_early
    assert report.verdict == "unstable" and 3 <= report.failures <= 7 < report.samples
    assert "consecutive failures" in report.reason


def test_watch_connection_refused_and_fake_clock() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    report = watch(f"http://127.0.0.1:{port}", window=5, interval=0.01, max_error_rate=1.0,
                   max_p95_ms=1000)  # fmt: skip
    assert report.verdict == "unstable" and report.samples == 3
    assert "ConnectError" in report.reason

    # an injected clock: a one-hour window checked every 10 s, in no real time
    now = [0.0]

    def clock() -> float:
        return now[0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    import httpx

    def answer(request: httpx.Request) -> httpx.Response:
        now[0] += 0.02
        return httpx.Response(200, json={"status": "pass"})

    report = watch(
        "http://odoo.invalid",
        window=3600,
        interval=10,
        max_error_rate=0.0,
        max_p95_ms=100,
        clock=clock,
        sleep=sleep,
        transport=httpx.MockTransport(answer),
    )
    assert report.verdict == "stable" and report.samples == 361
    assert report.p95_ms == 20.0 and report.seconds == pytest.approx(3600.02)
    assert percentile([5, 1, 3, 2, 4], 50) == 3 and percentile([], 95) is None


# -- identity and outgoing side effects ----------------------------------------------------


def test_identity_is_carried_to_green(odoo: OdooProject, clone: Callable[[], str]) -> None:
    green = clone()
    with _connect(odoo, odoo.prod_db) as prod:
        identity = read_identity(prod)
    assert identity["database.uuid"] == odoo.populated.database_uuid
    assert {"database.secret", "database.create_date", "web.base.url"} <= set(identity)
    with _connect(odoo, green) as conn:
        new_identity(conn)  # a staging copy: its own uuid and secret
        conn.execute(
            "UPDATE ir_config_parameter SET value = 'https://staging.example.com' "
            "WHERE key = 'web.base.url'"
        )
        conn.execute(
            "INSERT INTO ir_config_parameter (key, value) VALUES "
            "('database.expiration_date', '2030-01-01 00:00:00')"
        )
        assert not same_identity(read_identity(conn), identity)
        changed = apply_identity(conn, identity)
        assert sorted(changed) == [
            "ir_config_parameter: deleted database.expiration_date",
            "ir_config_parameter: set database.secret",
            "ir_config_parameter: set database.uuid",
            "ir_config_parameter: set web.base.url",
        ]
        assert not any(identity["database.secret"] in line for line in changed)
        conn.commit()
        assert same_identity(read_identity(conn), identity)
        assert read_identity(conn) == identity
        assert apply_identity(conn, identity) == []


_NO_IDS = {"ir_config_parameter"}  # re-inserted keys get new ids and dates


def test_restore_outgoing_makes_a_neutralized_copy_production_again(
    odoo: OdooProject, clone: Callable[[], str]
) -> None:
    green = clone()
    with _connect(odoo, odoo.prod_db) as prod:
        outgoing = read_outgoing(prod)
    json.dumps(outgoing)  # JSON-serializable (it can be kept in a run's plan, redacted)
    assert outgoing["neutralized"] is False and outgoing["neutralized_flag"] is None
    assert len(outgoing["mail_servers"]["rows"]) == 3
    assert "xmlid:base.autovacuum_job" in outgoing["active_crons"]
    assert "xmlid:base.ir_cron_partner_autocomplete" not in outgoing["active_crons"]
    assert len(outgoing["webhooks"]) == 2 and outgoing["banner_active"] is False
    with _connect(odoo, green) as conn:
        neutralize(conn)
        conn.commit()
    assert table_snapshot(odoo.conninfo(green)) != table_snapshot(odoo.conninfo(odoo.prod_db))
    with _connect(odoo, green) as conn:
        result = restore_outgoing(conn, outgoing)
        conn.commit()
        assert result["complete"] and result["unmatched"] == [] and result["extra"] == []
        text = "\n".join(result["changed"])
        assert "deleted neutralization's dummy server" in text
        assert "database.is_neutralized" in text and "mail.web_push_vapid_private_key" in text
        # 8 crons: one inactive in production, base.autovacuum_job left active by neutralize
        assert "ir_cron: 6 cron(s) activated, 0 deactivated" in text
        assert not any(
            secret in text
            for row in outgoing["mail_servers"]["rows"]
            if (secret := row["smtp_pass"])
        )
        again = restore_outgoing(conn, outgoing)
        assert again["changed"] == [] and again["complete"]
    before = table_snapshot(odoo.conninfo(odoo.prod_db))
    after = table_snapshot(odoo.conninfo(green))
    assert set(before) == set(after)
    for table in before:
        if table not in _NO_IDS:
            assert after[table] == before[table], table
    pairs = sorted((r[1], r[2]) for r in before["ir_config_parameter"])
    assert sorted((r[1], r[2]) for r in after["ir_config_parameter"]) == pairs


def test_restore_outgoing_says_what_it_cannot_match(
    odoo: OdooProject, clone: Callable[[], str]
) -> None:
    green = clone()
    with _connect(odoo, odoo.prod_db) as prod:
        outgoing = read_outgoing(prod)
    with _connect(odoo, green) as conn:
        neutralize(conn)
        # staging's own life: a test mail server, a new module's cron, a cron removed, a
        # webhook renamed
        conn.execute(
            "INSERT INTO ir_mail_server (name, smtp_host, smtp_port, smtp_authentication, "
            "smtp_encryption, active) VALUES ('Mailtrap', 'sandbox.smtp.mailtrap.io', 2525, "
            "'login', 'none', true)"
        )
        conn.execute(
            "INSERT INTO ir_cron (ir_actions_server_id, cron_name, user_id, active, nextcall) "
            "VALUES (1, 'Staging: new module job', 1, false, now())"
        )
        conn.execute(
            "DELETE FROM ir_cron WHERE id = (SELECT res_id FROM ir_model_data WHERE "
            "model = 'ir.cron' AND module = 'mail' AND name = 'ir_cron_delete_notification')"
        )
        conn.execute(
            "DELETE FROM ir_model_data WHERE model = 'ir.cron' AND module = 'mail' "
            "AND name = 'ir_cron_delete_notification'"
        )
        conn.execute(
            'UPDATE ir_act_server SET name = \'{"en_US": "Sync partner to CRM v2"}\' '
            "WHERE name ->> 'en_US' = 'Sync partner to CRM'"
        )
        result = restore_outgoing(conn, outgoing)
        conn.rollback()
    assert not result["complete"]
    assert result["unmatched"] == [
        "ir_cron: production's cron xmlid:mail.ir_cron_delete_notification is not in green",
        "ir_act_server: production's webhook action name:Sync partner to CRM is not in green",
    ]
    assert "ir_mail_server: deleted green's own server 'Mailtrap' (#5)" in result["changed"]
    assert result["extra"] == [
        "ir_cron: green's own cron name:Staging: new module job (#9) left as it is "
        "(active = false)",
        "ir_act_server: green's own webhook action name:Sync partner to CRM v2 (#10) left as it is",
    ]


def test_outgoing_of_a_database_without_mail_payment_fetchmail_and_older_crons(
    odoo: OdooProject, tmp_path: Path
) -> None:
    """Absent tables are skipped; crons without cron_name (Odoo <= 16) or XML id are matched
    by their server action's name."""
    prod, green = f"m_{uuid.uuid4().hex[:8]}", f"m_{uuid.uuid4().hex[:8]}"
    ident = sql.Identifier
    with odoo.admin() as su:
        su.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(ident(prod), ident(odoo.role)))
    try:
        create_schema(
            odoo.conninfo(prod), with_mail=False, with_payment=False, with_fetchmail=False
        )
        populate(odoo.conninfo(prod), tmp_path / "fs", partners=10, attachments=2)
        with _connect(odoo, prod, autocommit=True) as conn:
            conn.execute("ALTER TABLE ir_cron DROP COLUMN cron_name")
            conn.execute("DELETE FROM ir_model_data WHERE model = 'ir.cron'")
            outgoing = read_outgoing(conn)
        assert outgoing["fetchmail_servers"] is None and outgoing["payment_providers"] is None
        assert outgoing["mail_templates"] is None
        assert "name:Base: Auto-vacuum internal data" in outgoing["crons"]
        with odoo.admin() as su:
            su.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {} OWNER {}").format(
                    ident(green), ident(prod), ident(odoo.role)
                )
            )
        with _connect(odoo, green) as conn:
            lines = neutralize(conn)
            assert any("fetchmail_server: skipped" in line for line in lines)
            result = restore_outgoing(conn, outgoing)
            conn.commit()
        assert result["complete"] and result["extra"] == [], result
        before = table_snapshot(odoo.conninfo(prod))
        after = table_snapshot(odoo.conninfo(green))
        for table in before:
            if table not in _NO_IDS:
                assert after[table] == before[table], table
    finally:
        with odoo.admin() as su:
            for db in (prod, green):
                su.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident(db)))
