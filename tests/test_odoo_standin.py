"""The Odoo server and service-manager stand-ins the deploy tests drive (real PG, real HTTP)."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from liftgate.sandbox.cluster import PgCluster
from odoo_standin import (
    LOGFILE_NAME,
    PIDFILE_NAME,
    SERVICE_PY,
    commit,
    free_port,
    http_json,
    http_request,
    make_addons_repo,
    run_odoo_bin,
    wait_http,
    write_module,
    write_odoo_bin,
    write_odoo_conf,
    write_service,
)
from odoo_standin.loading import LoadError, adapt_version
from support.odoo_project import OdooProject, make_odoo_project

PASSWORD = "pw-Never-Logged-7f3a"  # trust auth ignores it; it must appear in no output
LOG_LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} \d+ (DEBUG|INFO|WARNING|ERROR|CRITICAL) \S+ "
    r"[\w.]+: "
)


@dataclass
class Env:
    project: OdooProject
    repo: Path
    odoo_bin: Path
    conf: Path
    filestore: Path
    http_port: int
    tmp: Path

    @property
    def db(self) -> str:
        return self.project.prod_db

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_odoo_bin(self.odoo_bin, "-c", str(self.conf), *args)

    def rows(self, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.project.conninfo(self.db)) as conn:
            return conn.execute(query.encode(), params).fetchall()

    def modules(self) -> dict[str, str]:
        rows = self.rows(
            "SELECT name, latest_version FROM ir_module_module WHERE state = 'installed'"
        )
        return dict(rows)

    def files(self) -> set[str]:
        return {
            p.relative_to(self.filestore).as_posix()
            for p in self.filestore.rglob("*")
            if p.is_file()
        }


@pytest.fixture
def env(tmp_path: Path, pg_cluster: PgCluster) -> Env:
    project = make_odoo_project(tmp_path / "proj", pg_cluster, partners=20, attachments=5)
    repo = make_addons_repo(tmp_path / "addons")
    port = free_port()
    conf = write_odoo_conf(
        tmp_path / "etc" / "odoo.conf",
        host=str(pg_cluster.socket_dir),
        port=pg_cluster.port,
        user=project.role,
        password=PASSWORD,
        db=project.prod_db,
        addons_path=[repo],
        data_dir=project.root / "data",
        http_port=port,
    )
    return Env(
        project=project,
        repo=repo,
        odoo_bin=write_odoo_bin(tmp_path / "bin"),
        conf=conf,
        filestore=project.prod_filestore,
        http_port=port,
        tmp=tmp_path,
    )


@pytest.fixture
def services() -> Iterator[list[dict[str, list[str]]]]:
    """Services a test starts; every one is stopped at teardown."""
    started: list[dict[str, list[str]]] = []
    yield started
    for svc in started:
        subprocess.run(svc["stop"], capture_output=True, timeout=30, check=False)


def _start(services: list[dict[str, list[str]]], svc: dict[str, list[str]]) -> None:
    services.append(svc)
    began = time.monotonic()
    proc = subprocess.run(svc["start"], capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 0, proc.stderr
    assert time.monotonic() - began < 5, "start must return at once"


def _log_lines(text: str) -> list[str]:
    """The log lines (traceback lines continue the record before them)."""
    return [line for line in text.splitlines() if LOG_LINE.match(line)]


def _assert_log_hygiene(env: Env, text: str) -> None:
    assert PASSWORD not in text
    assert _log_lines(text), text
    first = text.splitlines()[0]
    assert LOG_LINE.match(first), first
    assert str(env.conf) in text  # the conf path is logged
    assert env.project.role in text  # and the db user


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


# -- module loading --------------------------------------------------------------------------


def test_adapt_version_follows_odoo() -> None:
    assert adapt_version("1.2.0", "17.0") == "17.0.1.2.0"
    assert adapt_version("1.2", "17.0") == "17.0.1.2"
    assert adapt_version("17.0.1.2", "17.0") == "17.0.1.2"
    assert adapt_version("17.0", "17.0") == "17.0.17.0"
    with pytest.raises(LoadError):
        adapt_version("16.0.1.0.0", "17.0")
    with pytest.raises(LoadError):
        adapt_version("one", "17.0")


def test_update_touches_only_installed_modules(env: Env) -> None:
    write_module(env.repo, "web", version="1.2.0")
    write_module(env.repo, "web_tour", version="1.0.1", depends=("web",))
    write_module(env.repo, "mail", version="2.0.0")
    write_module(env.repo, "shop", version="1.0.0")
    commit(env.repo, "modules")
    before = env.modules()
    files_before = env.files()

    proc = env.run("-u", "web,shop", "--stop-after-init")

    assert proc.returncode == 0, proc.stderr
    after = env.modules()
    assert after["web"] == "17.0.1.2.0"
    assert after["web_tour"] == "17.0.1.0.1"  # installed dependent: upgraded too, like Odoo
    assert after["mail"] == before["mail"] == "17.0.1.15"
    assert after["base"] == before["base"]
    assert "shop" not in after
    assert env.rows("SELECT count(*) FROM ir_module_module WHERE name = 'shop'") == [(0,)]
    log = proc.stderr
    _assert_log_hygiene(env, log)
    assert [line for line in _log_lines(log) if " WARNING " in line and "shop" in line]
    assert log.index("Loading module web (1/2)") < log.index("Loading module web_tour (2/2)")
    # the regenerated asset bundle: a new file in Odoo's layout, referenced by its row
    ((fname, size, checksum),) = env.rows(
        "SELECT store_fname, file_size, checksum FROM ir_attachment WHERE name = %s",
        ("/web/assets/web.css",),
    )
    content = (env.filestore / fname).read_bytes()
    assert fname == f"{checksum[:2]}/{checksum}"
    assert hashlib.sha1(content, usedforsecurity=False).hexdigest() == checksum
    assert len(content) == size
    assert fname not in files_before
    assert f"checklist/{fname}" in env.files()


def test_install_with_dependencies_and_sql(env: Env) -> None:
    write_module(
        env.repo,
        "shop_core",
        license="OPL-1",
        files={
            "standin_update.sql": "CREATE TABLE shop_order (id serial PRIMARY KEY, ref varchar);\n"
            "INSERT INTO shop_order (ref) VALUES ('SO001');\n"
        },
    )
    write_module(env.repo, "shop_ui", version="17.0.2.1", depends=("shop_core", "web"))
    commit(env.repo, "shop")

    proc = env.run("-i", "shop_ui", "--stop-after-init")

    assert proc.returncode == 0, proc.stderr
    mods = env.modules()
    assert mods["shop_core"] == "17.0.1.0.0"
    assert mods["shop_ui"] == "17.0.2.1"
    assert mods["web"] == "17.0.1.0"  # installed dependency: not reloaded
    rows = env.rows(
        "SELECT name, license, shortdesc FROM ir_module_module WHERE name LIKE 'shop%%' "
        "ORDER BY name"
    )
    assert rows == [
        ("shop_core", "OPL-1", {"en_US": "Shop Core"}),
        ("shop_ui", "LGPL-3", {"en_US": "Shop Ui"}),
    ]
    assert env.rows("SELECT ref FROM shop_order") == [("SO001",)]
    assert env.rows(
        "SELECT count(*) FROM ir_model_data WHERE module = 'base' AND name = 'module_shop_ui'"
    ) == [(1,)]
    assert proc.stderr.index("Loading module shop_core") < proc.stderr.index(
        "Loading module shop_ui"
    )
    _assert_log_hygiene(env, proc.stderr)


def test_update_all_and_logfile(env: Env) -> None:
    write_module(env.repo, "web", version="1.1.0")
    write_module(env.repo, "mail", version="1.16")
    write_module(env.repo, "shop", version="1.0.0")
    commit(env.repo, "modules")
    logfile = env.tmp / "log" / "odoo.log"

    proc = env.run("-u", "all", "--stop-after-init", "--logfile", str(logfile))

    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    mods = env.modules()
    assert (mods["web"], mods["mail"], mods["base"]) == ("17.0.1.1.0", "17.0.1.16", "17.0.1.3")
    assert "shop" not in mods
    log = logfile.read_text()
    _assert_log_hygiene(env, log)
    assert f" INFO {env.db} odoo.modules.loading: Modules loaded." in log


def test_failing_module_leaves_earlier_modules_committed(env: Env) -> None:
    write_module(
        env.repo,
        "shop_core",
        files={"standin_update.sql": "CREATE TABLE shop_order (id serial PRIMARY KEY);"},
    )
    write_module(
        env.repo,
        "shop_ui",
        depends=("shop_core",),
        extra_manifest={"standin_fail": "boom: cannot compute the view"},
        files={"standin_update.sql": "CREATE TABLE shop_ui_cache (id integer);"},
    )
    commit(env.repo, "shop")
    files_before = env.files()

    proc = env.run("-i", "shop_ui", "--stop-after-init")

    assert proc.returncode != 0
    mods = env.modules()
    assert mods["shop_core"] == "17.0.1.0.0"
    assert "shop_ui" not in mods
    assert env.rows("SELECT to_regclass('shop_order') IS NOT NULL") == [(True,)]
    assert env.rows("SELECT to_regclass('shop_ui_cache') IS NULL") == [(True,)]
    assets = dict(
        env.rows("SELECT name, store_fname FROM ir_attachment WHERE name LIKE '/web/assets/%%'")
    )
    assert set(assets) == {"/web/assets/shop_core.css"}
    new_files = {f for f in env.files() - files_before if not f.startswith("checklist/")}
    assert len(new_files) == 2  # shop_ui's asset file stays behind, as after a real crash
    orphan = (new_files - set(assets.values())).pop()
    assert b"shop_ui" in (env.filestore / orphan).read_bytes()
    errors = [line for line in _log_lines(proc.stderr) if " ERROR " in line]
    assert errors, proc.stderr
    assert "Traceback (most recent call last)" in proc.stderr
    assert "boom: cannot compute the view" in proc.stderr
    assert PASSWORD not in proc.stderr


def test_unknown_module_and_bad_addons_path_fail(env: Env) -> None:
    write_module(env.repo, "shop")
    commit(env.repo, "shop")
    before = env.rows("SELECT * FROM ir_module_module ORDER BY id")

    proc = env.run("-i", "shop,nosuch", "--stop-after-init")
    assert proc.returncode != 0
    assert [line for line in _log_lines(proc.stderr) if " ERROR " in line and "nosuch" in line]
    assert env.rows("SELECT * FROM ir_module_module ORDER BY id") == before

    proc = env.run("--addons-path", str(env.tmp / "missing"), "--stop-after-init")
    assert proc.returncode == 2
    assert "not a valid addons directory" in proc.stderr


def test_neutralize(env: Env) -> None:
    proc = run_odoo_bin(env.odoo_bin, "neutralize", "-c", str(env.conf), "-d", env.db)

    assert proc.returncode == 0, proc.stderr
    crons = env.rows(
        "SELECT d.module || '.' || d.name FROM ir_cron c JOIN ir_model_data d "
        "ON d.model = 'ir.cron' AND d.res_id = c.id WHERE c.active"
    )
    assert crons == [("base.autovacuum_job",)]
    assert env.rows("SELECT smtp_host FROM ir_mail_server WHERE active") == [("invalid",)]
    assert env.rows("SELECT count(*) FROM fetchmail_server WHERE active") == [(0,)]
    assert env.rows(
        "SELECT value FROM ir_config_parameter WHERE key = 'database.is_neutralized'"
    ) == [("true",)]
    _assert_log_hygiene(env, proc.stderr)
    assert "Neutralization finished" in proc.stderr


# -- HTTP and the service manager ------------------------------------------------------------


def test_http_through_service_manager(env: Env, services: list[dict[str, list[str]]]) -> None:
    svc = write_service(env.tmp / "svc", env.odoo_bin, env.conf, http_port=env.http_port)
    pidfile = env.tmp / "svc" / PIDFILE_NAME
    _start(services, svc)
    wait_http(f"{env.url}/web/health")
    pid = int(pidfile.read_text())
    assert subprocess.run(svc["status"], capture_output=True, check=False).returncode == 0
    _start(services, svc)  # already running: nothing more started
    assert int(pidfile.read_text()) == pid

    assert http_json(f"{env.url}/web/health") == (200, {"status": "pass"})
    assert http_json(f"{env.url}/web/health?db_server_status=1") == (
        200,
        {"status": "pass", "db_server_status": True},
    )
    status, page = http_request("GET", f"{env.url}/web/login")
    (users,) = env.rows("SELECT count(*) FROM res_users WHERE active")[0]
    assert status == 200
    assert b"<title>Odoo</title>" in page
    assert env.db.encode() in page
    assert env.project.populated.database_uuid.encode() in page
    assert f"{users} active users".encode() in page

    status, answer = http_json(f"{env.url}/standin/write", {"payload": "hello"})
    assert status == 200
    assert env.rows("SELECT id, payload FROM standin_write") == [(answer["id"], "hello")]

    status, info = http_json(f"{env.url}/standin/info")
    assert status == 200
    assert info["db"] == env.db and info["pid"] == pid and info["series"] == "17.0"
    assert info["addons_path"] == [str(env.repo)]
    assert info["modules"] == env.modules()
    assert http_request("GET", f"{env.url}/nope")[0] == 404

    conn = http.client.HTTPConnection("127.0.0.1", env.http_port, timeout=5)  # keep-alive
    sockets = []
    for _ in range(2):
        conn.request("GET", "/web/health")
        resp = conn.getresponse()
        assert (resp.status, resp.version, resp.will_close) == (200, 11, False)
        assert json.loads(resp.read()) == {"status": "pass"}
        sockets.append(conn.sock)
    assert sockets[0] is sockets[1]  # one connection served both requests
    conn.close()

    proc = subprocess.run(svc["stop"], capture_output=True, timeout=30, check=False)
    assert proc.returncode == 0
    assert not _alive(pid)
    assert not pidfile.exists()
    assert subprocess.run(svc["status"], capture_output=True, check=False).returncode == 3
    with pytest.raises(OSError):
        http_request("GET", f"{env.url}/web/health", timeout=2)
    assert subprocess.run(svc["stop"], capture_output=True, check=False).returncode == 0
    log = (env.tmp / "svc" / LOGFILE_NAME).read_text()
    _assert_log_hygiene(env, log)
    assert "HTTP service (werkzeug) running on 127.0.0.1" in log
    assert "Initiating shutdown" in log


def test_write_refused_while_database_read_only(
    env: Env, services: list[dict[str, list[str]]]
) -> None:
    svc = write_service(env.tmp / "svc", env.odoo_bin, env.conf, http_port=env.http_port)
    _start(services, svc)
    wait_http(f"{env.url}/web/health")
    write = f"{env.url}/standin/write"
    assert http_json(write, {"payload": "before"})[0] == 200
    db = sql.Identifier(env.db)

    def kick(admin: psycopg.Connection[Any]) -> None:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (env.db,),
        )

    with env.project.admin() as admin:
        admin.execute(
            sql.SQL("ALTER DATABASE {} SET default_transaction_read_only = on").format(db)
        )
        kick(admin)
    status, answer = http_json(write, {"payload": "while read-only"})
    assert status == 503
    assert answer["sqlstate"] == "25006"  # read_only_sql_transaction
    assert http_request("GET", f"{env.url}/web/login")[0] == 200  # reads still work

    with env.project.admin() as admin:
        admin.execute(sql.SQL("ALTER DATABASE {} RESET default_transaction_read_only").format(db))
        kick(admin)
    assert http_json(write, {"payload": "after"})[0] == 200
    assert env.rows("SELECT payload FROM standin_write ORDER BY id") == [("before",), ("after",)]

    # the database renamed away and back under the running server
    with env.project.admin() as admin:
        kick(admin)
        admin.execute(
            sql.SQL("ALTER DATABASE {} RENAME TO {}").format(db, sql.Identifier(f"{env.db}_x"))
        )
    assert http_request("GET", f"{env.url}/web/login")[0] == 500
    assert http_json(write, {"payload": "no database"})[0] == 503
    with env.project.admin() as admin:
        admin.execute(
            sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(f"{env.db}_x"), db)
        )
    assert http_request("GET", f"{env.url}/web/login")[0] == 200


def test_restart_runs_the_update_again(env: Env, services: list[dict[str, list[str]]]) -> None:
    write_module(env.repo, "web", version="1.0.0")
    commit(env.repo, "web 1.0.0")
    svc = write_service(
        env.tmp / "svc", env.odoo_bin, env.conf, http_port=env.http_port, extra_args=["-u", "web"]
    )
    _start(services, svc)
    wait_http(f"{env.url}/web/health")
    first = http_json(f"{env.url}/standin/info")[1]
    assert first["modules"]["web"] == "17.0.1.0.0"

    write_module(env.repo, "web", version="1.1.0")
    commit(env.repo, "web 1.1.0")
    proc = subprocess.run(svc["restart"], capture_output=True, timeout=30, check=False)
    assert proc.returncode == 0, proc.stderr
    wait_http(f"{env.url}/web/health")
    second = http_json(f"{env.url}/standin/info")[1]
    assert second["pid"] != first["pid"]
    assert second["modules"]["web"] == "17.0.1.1.0"
    assert not _alive(first["pid"])


def test_stop_kills_a_process_ignoring_sigterm(tmp_path: Path) -> None:
    pidfile = tmp_path / "stubborn.pid"
    base = [sys.executable, str(SERVICE_PY)]
    stubborn = [
        sys.executable,
        "-c",
        "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(60)",
    ]
    start = [*base, "start", "--pidfile", str(pidfile), "--logfile", str(tmp_path / "log")]
    assert subprocess.run([*start, "--", *stubborn], check=False).returncode == 0
    pid = int(pidfile.read_text())
    try:
        time.sleep(0.3)  # let it install its handler
        began = time.monotonic()
        stop = [*base, "stop", "--pidfile", str(pidfile), "--timeout", "0.5"]
        assert subprocess.run(stop, capture_output=True, check=False).returncode == 0
        assert 0.5 <= time.monotonic() - began < 5
        assert not _alive(pid)
    finally:
        if _alive(pid):
            os.kill(pid, 9)
