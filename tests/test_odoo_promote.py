"""``liftgate odoo promote staging prod``: real PostgreSQL, real HAProxy and nginx, and the
Odoo server stand-in serving staging, blue and green (through their configured commands
and URLs)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from liftgate.engine.evidence import verify_bundle
from liftgate.sandbox.cluster import PgCluster
from liftgate.sandbox.odoo_sample import table_snapshot
from odoo_standin import http_json, write_module
from support.promote_env import PromoteEnv, make_promote_env
from support.proxies import TrafficClient
from support.tree import start_paused

SEED_FILES = {
    "inputs.json",
    "run_id.txt",
    "staging_snapshot.json",
    "blue_backup.json",
    "green_restore.json",
    "smoke_tests.json",
    "cutover.json",
    "stability_metrics.json",
    "final_status.json",
    "promotion_summary.md",
}
EXTRA_FILES = {"preconditions.json", "plan.json", "guardrails.json", "MANIFEST.sha256"}


@pytest.fixture
def penv(tmp_path: Path, pg_cluster: PgCluster) -> Iterator[PromoteEnv]:
    env = make_promote_env(tmp_path, pg_cluster)
    try:
        yield env
    finally:
        env.stop()


def _param(conninfo: str, key: str) -> str | None:
    with psycopg.connect(conninfo) as conn:
        row = conn.execute(
            "SELECT value FROM ir_config_parameter WHERE key = %s", (key,)
        ).fetchone()
    return str(row[0]) if row else None


def _frozen(p: PromoteEnv, db: str) -> bool:
    with p.project.admin() as admin:
        row = admin.execute(
            "SELECT count(*) FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase"
            " WHERE d.datname = %s AND s.setrole = 0"
            " AND 'default_transaction_read_only=on' = ANY(s.setconfig)",
            (db,),
        ).fetchone()
    return bool(row and row[0])


def _db_exists(p: PromoteEnv, db: str) -> bool:
    with p.project.admin() as admin:
        return (
            admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db,)).fetchone()
            is not None
        )


def _unchanged(p: PromoteEnv, blue_before: dict[str, Any]) -> None:
    """Nothing changed: blue serves, unfrozen, same data; no green database."""
    assert p.active() == "blue"
    assert not _frozen(p, p.dbs["blue"])
    assert not _db_exists(p, p.dbs["green"])
    assert table_snapshot(p.conninfo("blue")) == blue_before
    status, body = http_json(f"{p.public_url}/web/health")
    assert status == 200 and body == {"status": "pass"}


def _modules(conninfo: str) -> dict[str, str]:
    with psycopg.connect(conninfo) as conn:
        rows = conn.execute(
            "SELECT name, latest_version FROM ir_module_module WHERE state = 'installed'"
        ).fetchall()
    return {str(n): str(v) for n, v in rows}


class Writer:
    """POSTs /standin/write through the public URL until stopped; keeps what was acked."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.acked: list[str] = []
        self.refused = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Writer:
        self._thread.start()
        return self

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            n += 1
            payload = f"w{n}"
            try:
                status, _ = http_json(f"{self.url}/standin/write", {"payload": payload}, timeout=5)
            except OSError:
                status = 0
            if status == 200:
                self.acked.append(payload)
            else:
                self.refused += 1
            time.sleep(0.01)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def test_promotion_with_production_data_loses_no_write(penv: PromoteEnv) -> None:
    uuid_before = _param(penv.conninfo("blue"), "database.uuid")
    writer = Writer(penv.public_url).start()
    reader = TrafficClient(penv.proxy.port, retry_reused=False, path="/web/health").start()
    try:
        reader.wait_for(5)
        code, out = penv.promote("--approve")
    finally:
        time.sleep(0.3)
        writer.stop()
        stats = reader.stop()
    assert code == 0, out
    assert out["active"] == "green" and penv.active() == "green"
    assert stats.failures == [] and stats.requests > 10, stats.failures[:3]
    # every write blue acknowledged is in production (green) now
    with psycopg.connect(penv.conninfo("green")) as conn:
        stored = {str(r[0]) for r in conn.execute("SELECT payload FROM standin_write")}
    assert writer.acked and set(writer.acked) <= stored
    # production's identity is carried; staging's code runs
    assert _param(penv.conninfo("green"), "database.uuid") == uuid_before
    assert _modules(penv.conninfo("green"))["shop"] == "17.0.1.1.0"
    assert _modules(penv.conninfo("blue"))["shop"] == "17.0.1.0.0"
    # green serves and is writable; blue is kept frozen (no cron, no mail) for rollback
    assert not _frozen(penv, penv.dbs["green"]) and _frozen(penv, penv.dbs["blue"])
    evidence = Path(out["evidence_path"])
    names = {p.name for p in evidence.iterdir() if not p.name.startswith(".")}
    assert names == SEED_FILES | EXTRA_FILES
    assert verify_bundle(evidence) == []
    cutover = json.loads((evidence / "cutover.json").read_text())
    assert cutover["to"] == "green" and cutover["write_freeze_seconds"] > 0
    pre = json.loads((evidence / "preconditions.json").read_text())
    assert [c["number"] for c in pre["checks"]] == [1, 2, 3, 4, 5, 6, 7]
    assert all(c["ok"] for c in pre["checks"])
    code, status = penv.cli_json("odoo", "status", "prod")
    assert status["active_slot"] == "green" and status["commit"] == penv.staged_commit
    assert status["rollback_window_seconds_left"] > 0
    # a second promotion inside the window is refused
    code, out = penv.promote("--approve")
    assert code == 3 and "rollback window" in out["message"], out


def test_manual_rollback_and_green_writes(penv: PromoteEnv) -> None:
    code, out = penv.promote("--approve")
    assert code == 0, out
    status, body = http_json(f"{penv.public_url}/standin/write", {"payload": "on green"})
    assert status == 200, body
    code, out = penv.cli_json("odoo", "rollback", "prod")
    assert code == 3 and "writes since the cutover" in out["message"], out
    assert penv.active() == "green"
    started = time.monotonic()
    code, out = penv.cli_json("odoo", "rollback", "prod", "--discard-green-writes")
    assert code == 0, out
    assert time.monotonic() - started < 30
    assert penv.active() == "blue" and out["green_writes_after_cutover"] >= 1
    assert not _frozen(penv, penv.dbs["blue"])
    kept = out["green_kept_as"]["db"]
    assert _db_exists(penv, kept)  # green's database is never dropped by a rollback
    status, body = http_json(f"{penv.public_url}/standin/write", {"payload": "on blue again"})
    assert status == 200, body
    code, out = penv.cli_json("odoo", "rollback", "prod")
    assert code == 3, out  # nothing left to roll back


def test_approval_pauses_before_the_freeze(penv: PromoteEnv) -> None:
    code, out = penv.promote()
    assert code == 0 and out["status"] == "PAUSED", out
    run_id = out["run_id"]
    # production is not frozen while it waits for a person; green was rehearsed, torn down
    assert not _frozen(penv, penv.dbs["blue"]) and penv.active() == "blue"
    assert not _db_exists(penv, penv.dbs["green"])
    code, runs = penv.cli_json("runs", "show", run_id)
    assert runs["run"]["status"] == "awaiting_approval", runs
    code, second = penv.promote("--approve")
    assert code == 3 and "waiting for approval" in second["message"], second
    code, out = penv.cli_json("approve", run_id)
    assert code == 0 and out["active"] == "green", out
    final = json.loads((Path(out["evidence_path"]) / "final_status.json").read_text())
    assert final["status"] == "ok"
    summary = (Path(out["evidence_path"]) / "promotion_summary.md").read_text()
    assert "approval: done" in summary


def test_green_failing_smoke_is_torn_down(tmp_path: Path, pg_cluster: PgCluster) -> None:
    p = make_promote_env(tmp_path, pg_cluster)
    try:
        config = p.root / "liftgate.toml"
        text = config.read_text()
        marker = "[env.prod]\n"
        head, tail = text.split(marker, 1)
        tail = tail.replace('contains = "Odoo"', 'contains = "text on no page"', 1)
        config.write_text(head + marker + tail)
        before = table_snapshot(p.conninfo("blue"))
        code, out = p.promote("--approve")
        assert code == 8 and "smoke" in out["message"], out
        _unchanged(p, before)
        run = out["message"].rsplit("(run ", 1)[1].rstrip(")")
        rollback = json.loads((p.root / ".liftgate/evidence" / run / "rollback.json").read_text())
        assert rollback["errors"] == []
    finally:
        p.stop()


def test_unstable_green_is_switched_back(penv: PromoteEnv, tmp_path: Path) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    proc, marker = start_paused(
        ["odoo", "promote", "staging", "prod", "--approve", "--json"],
        penv.root,
        "promote.watch.before",
        markers,
        timeout=240,
    )
    try:
        assert penv.active() == "green"
        subprocess.run(penv.services["green"]["stop"], check=True, timeout=30)
    finally:
        marker.unlink()
        stdout, _ = proc.communicate(timeout=240)
    out = json.loads(stdout.strip().splitlines()[-1])
    assert proc.returncode == 8 and "switched back" in out["message"], out
    assert penv.active() == "blue" and not _frozen(penv, penv.dbs["blue"])
    status, body = http_json(f"{penv.public_url}/web/health")
    assert status == 200 and body == {"status": "pass"}


@pytest.mark.parametrize(
    "point",
    [
        "promote.start.recorded",
        "promote.staging_snapshot.after",
        "promote.blue_backup.after",
        "promote.green_code.after",
        "promote.green_aside.after",
        "promote.freeze.after",
        "promote.green_copy.after",
        "promote.green_update.after",
        "promote.green_start.after",
        "promote.smoke.after",
        "promote.cutover.before",
        "promote.cutover.after",
        "promote.watch.after",
        "promote.finalize.after",
    ],
)
def test_killed_promotion_recovers_to_one_healthy_slot(
    penv: PromoteEnv, tmp_path: Path, point: str
) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    proc, marker = start_paused(
        ["odoo", "promote", "staging", "prod", "--approve"], penv.root, point, markers, timeout=240
    )
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    marker.unlink(missing_ok=True)
    code, out = penv.cli_json("recover")
    assert code == 0, out
    active = penv.active()
    committed = point in ("promote.cutover.after", "promote.watch.after", "promote.finalize.after")
    assert active == ("green" if committed else "blue")
    serving = penv.dbs[active]
    assert not _frozen(penv, serving)
    assert _frozen(penv, penv.dbs["blue"]) == committed
    status, body = http_json(f"{penv.public_url}/web/health")
    assert status == 200 and body == {"status": "pass"}
    status, body = http_json(f"{penv.public_url}/standin/write", {"payload": "after recover"})
    assert status == 200, body
    code, runs = penv.cli_json("runs", "list")
    promotion = next(r for r in runs["runs"] if r["kind"] == "odoo.promote")
    assert promotion["status"] == ("ok" if committed else "failed")


# -- preconditions, each failing on its own ------------------------------------------------


def _refused(p: PromoteEnv, number: int) -> dict[str, Any]:
    before = table_snapshot(p.conninfo("blue"))
    code, out = p.promote("--approve")
    assert code == 3, out
    assert f"({number})" in out["message"], out
    _unchanged(p, before)
    return out


def test_precondition_1_staging_deploy_failed(penv: PromoteEnv) -> None:
    write_module(penv.repo, "shop", version="1.2.0", extra_manifest={"standin_fail": "no"})
    from odoo_standin import commit

    bad = commit(penv.repo, "broken")
    code, out = penv.cli_json("odoo", "deploy", "staging", "--commit", bad)
    assert code == 8, out
    _refused(penv, 1)


def test_precondition_2_staging_runs_another_commit(penv: PromoteEnv) -> None:
    app = penv.root / "app-staging"
    fake = "f" * 40
    (app / "releases" / fake).symlink_to(app / "releases" / penv.staged_commit)
    (app / "current").unlink()
    (app / "current").symlink_to(f"releases/{fake}")
    _refused(penv, 2)


def test_precondition_3_role_cannot_create_databases(penv: PromoteEnv) -> None:
    with penv.project.admin() as admin:
        admin.execute(f'ALTER ROLE "{penv.project.role}" NOCREATEDB')
    try:
        _refused(penv, 3)
    finally:
        with penv.project.admin() as admin:
            admin.execute(f'ALTER ROLE "{penv.project.role}" CREATEDB')


def test_precondition_4_no_disk_space_for_backups(penv: PromoteEnv) -> None:
    artifacts = penv.root / ".liftgate" / "artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(artifacts)], check=True)
    try:
        _refused(penv, 4)
    finally:
        subprocess.run(["umount", str(artifacts)], check=True)


def test_precondition_5_enterprise_module_in_the_release(penv: PromoteEnv) -> None:
    release = penv.root / "app-staging" / "releases" / penv.staged_commit
    write_module(release, "shop_studio", depends=("web_studio",))
    _refused(penv, 5)


def test_precondition_6_a_promotion_waits_for_approval(penv: PromoteEnv) -> None:
    code, out = penv.promote()
    assert code == 0 and out["status"] == "PAUSED", out
    _refused(penv, 6)


def test_precondition_7_active_slot_unhealthy(penv: PromoteEnv) -> None:
    subprocess.run(penv.services["blue"]["stop"], check=True, timeout=30)
    before = table_snapshot(penv.conninfo("blue"))
    code, out = penv.promote("--approve")
    assert code == 3 and "(7)" in out["message"], out
    assert penv.active() == "blue" and not _db_exists(penv, penv.dbs["green"])
    assert table_snapshot(penv.conninfo("blue")) == before


def test_promotion_through_nginx(tmp_path: Path, pg_cluster: PgCluster) -> None:
    p = make_promote_env(tmp_path, pg_cluster, switch="nginx")
    try:
        reader = TrafficClient(p.proxy.port, retry_reused=True, path="/web/health").start()
        try:
            reader.wait_for(5)
            code, out = p.promote("--approve", "--copy", "template")
        finally:
            stats = reader.stop()
        assert code == 0, out
        assert p.active() == "green"
        assert stats.failures == [] and stats.requests > 10, stats.failures[:3]
        restore = json.loads((Path(out["evidence_path"]) / "green_restore.json").read_text())
        assert restore["final"]["copy"]["strategy"] == "template"
    finally:
        p.stop()


def test_promotion_with_staging_data_keeps_production_identity(penv: PromoteEnv) -> None:
    code, out = penv.promote("--approve", "--data", "staging")
    assert code == 2 and "--yes-replace-production-data" in out["message"], out
    # staging's data is a neutralized copy, as a restore into staging makes it
    from odoo_standin import run_odoo_bin

    done = run_odoo_bin(penv.odoo_bin, "neutralize", "-c", str(penv.root / "staging.conf"))
    assert done.returncode == 0, done.stderr
    assert _param(penv.conninfo("staging"), "database.is_neutralized") == "true"
    with psycopg.connect(penv.conninfo("staging")) as conn:
        conn.execute(
            "UPDATE ir_config_parameter SET value = 'staging-uuid' WHERE key = 'database.uuid'"
        )
        conn.execute("INSERT INTO res_partner (name, active) VALUES ('only on staging', true)")
    uuid = _param(penv.conninfo("blue"), "database.uuid")
    with psycopg.connect(penv.conninfo("blue")) as conn:
        servers = conn.execute(
            "SELECT name, smtp_host, active FROM ir_mail_server ORDER BY name"
        ).fetchall()
        crons = conn.execute("SELECT count(*) FROM ir_cron WHERE active").fetchone()
    code, out = penv.promote("--approve", "--data", "staging", "--yes-replace-production-data")
    assert code == 0, out
    green = penv.conninfo("green")
    assert _param(green, "database.uuid") == uuid
    assert _param(green, "database.is_neutralized") is None
    with psycopg.connect(green) as conn:
        assert (
            conn.execute(
                "SELECT name, smtp_host, active FROM ir_mail_server ORDER BY name"
            ).fetchall()
            == servers
        )
        assert conn.execute("SELECT count(*) FROM ir_cron WHERE active").fetchone() == crons
        assert conn.execute(
            "SELECT count(*) FROM res_partner WHERE name = 'only on staging'"
        ).fetchone() == (1,)
