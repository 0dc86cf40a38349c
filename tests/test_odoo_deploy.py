"""``liftgate odoo deploy`` against real git repositories, a real PostgreSQL database and
the Odoo server stand-in (run through its configured command and URL)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from liftgate.engine.evidence import verify_bundle
from liftgate.sandbox.cluster import PgCluster
from liftgate.sandbox.odoo_sample import table_snapshot
from odoo_standin import commit, git, http_json, write_module
from support.deploy_env import DeployEnv, make_deploy_env
from support.tree import snapshot, start_paused

EVIDENCE = {
    "inputs.json",
    "run_id.txt",
    "plan.json",
    "git.json",
    "modules.json",
    "backup.json",
    "update.log",
    "health.json",
    "final_status.json",
    "summary.md",
    "MANIFEST.sha256",
}


@pytest.fixture
def denv(tmp_path: Path, pg_cluster: PgCluster) -> Iterator[DeployEnv]:
    env = make_deploy_env(tmp_path, pg_cluster)
    try:
        yield env
    finally:
        env.stop_service()


def _checksums_param(d: DeployEnv) -> dict[str, str] | None:
    with psycopg.connect(d.conninfo()) as conn:
        row = conn.execute(
            "SELECT value FROM ir_config_parameter WHERE key = 'liftgate.module_checksums'"
        ).fetchone()
    return json.loads(row[0]) if row else None


def _state(d: DeployEnv) -> tuple[dict[str, list[tuple[object, ...]]], dict[str, str], str | None]:
    return table_snapshot(d.conninfo()), snapshot(d.filestore), d.current()


def _same(after: object, before: object) -> None:
    """Equal states, naming the tables (or the parts) that differ when they are not."""
    assert isinstance(after, tuple) and isinstance(before, tuple)
    tables_a, tables_b = after[0], before[0]
    differ = sorted(t for t in set(tables_a) | set(tables_b) if tables_a.get(t) != tables_b.get(t))
    assert differ == [], f"tables differ: {differ}"
    assert after[1] == before[1], "filestore differs"
    assert after[2] == before[2], "current differs"


def _first_deploy(d: DeployEnv) -> str:
    sha = git(d.repo, "rev-parse", "HEAD")
    code, out = d.deploy(sha, "--install", "shop,shop_extra")
    assert code == 0, out
    return sha


def test_dry_run_prints_the_plan_and_changes_nothing(denv: DeployEnv) -> None:
    sha = git(denv.repo, "rev-parse", "HEAD")
    before = _state(denv)
    code, out = denv.deploy(sha[:8], "--dry-run")
    assert code == 0, out
    plan = out["plan"]
    assert plan["commit"] == sha and re.fullmatch(r"[0-9a-f]{40}", plan["commit"])
    by_name = {m["name"]: m for m in plan["modules"]}
    assert set(by_name) == {"shop", "shop_extra"}
    for module in plan["modules"]:
        assert {"name", "version", "license", "depends", "enterprise", "update"} <= set(module)
    assert by_name["shop"]["depends"] == ["base", "mail"]
    assert by_name["shop"]["license"] == "LGPL-3"  # Odoo's default when none is written
    assert by_name["shop"]["enterprise"] is False
    assert by_name["shop"]["update"] is False and by_name["shop"]["available"] is True
    # a branch name resolves to the same full SHA
    code, out = denv.deploy("main", "--dry-run")
    assert code == 0 and out["plan"]["commit"] == sha
    _same(_state(denv), before)
    assert not (denv.releases / "releases").exists()
    code, runs = denv.cli_json("runs", "list")
    assert code == 0 and runs.get("runs") == []


def test_first_deploy_then_only_changed_modules_are_updated(denv: DeployEnv) -> None:
    first = _first_deploy(denv)
    assert denv.current() == first
    assert (denv.releases / "releases" / first / "shop" / "__manifest__.py").is_file()
    assert not (denv.releases / "releases" / first / ".git").exists()
    modules = denv.modules()
    assert modules["shop"] == ("installed", "17.0.1.0.0")
    assert modules["shop_extra"] == ("installed", "17.0.1.0.0")
    recorded = _checksums_param(denv)
    assert recorded is not None and set(recorded) == {"shop", "shop_extra"}
    status, info = http_json(f"{denv.url}/standin/info")
    assert status == 200 and info["modules"]["shop"] == "17.0.1.0.0"

    # change shop only, and add a module nobody installed
    write_module(denv.repo, "shop", version="1.1.0", depends=("base", "mail"))
    write_module(denv.repo, "loyalty", version="1.0.0", depends=("shop",))
    second = commit(denv.repo, "shop 1.1.0, loyalty")
    code, out = denv.deploy(second, "--dry-run")
    by_name = {m["name"]: m for m in out["plan"]["modules"]}
    assert code == 0 and out["plan"]["update"] == ["shop"]
    assert by_name["shop_extra"]["update"] is False
    assert by_name["loyalty"]["available"] is True and by_name["loyalty"]["update"] is False
    code, out = denv.deploy(second)
    assert code == 0, out
    assert out["updated"] == ["shop"] and out["installed"] == []
    assert out["previous_commit"] == first
    modules = denv.modules()
    assert modules["shop"] == ("installed", "17.0.1.1.0")
    assert modules["shop_extra"] == ("installed", "17.0.1.0.0")
    assert modules.get("loyalty", ("uninstalled", None))[0] != "installed"
    assert denv.current() == second
    evidence = Path(out["evidence_path"])
    assert {p.name for p in evidence.iterdir()} >= EVIDENCE
    assert verify_bundle(evidence) == []
    log = (evidence / "update.log").read_text()
    assert "shop" in log
    health = json.loads((evidence / "health.json").read_text())
    assert health["health"]["passed"] is True and health["smoke"][0]["passed"] is True

    code, status_out = denv.cli_json("odoo", "status", denv.env_name)
    assert code == 0 and status_out["commit"] == second
    assert status_out["last_deploy"]["status"] == "ok"
    assert status_out["release"].endswith(second)

    # nothing changed: nothing to update
    code, out = denv.deploy(second)
    assert code == 0 and out["updated"] == []


def test_failing_update_leaves_database_filestore_and_current_as_before(
    denv: DeployEnv,
) -> None:
    first = _first_deploy(denv)
    # shop_extra's update changes data and commits; shop fails after its own changes
    write_module(
        denv.repo,
        "shop",
        version="1.2.0",
        depends=("base", "mail"),
        extra_manifest={"standin_fail": "shop 1.2.0 cannot migrate its data"},
        files={"standin_update.sql": "UPDATE res_partner SET name = 'broken' WHERE id < 10;"},
    )
    write_module(
        denv.repo,
        "shop_extra",
        version="1.2.0",
        depends=("base",),
        files={"standin_update.sql": "CREATE TABLE shop_extra_new (id int); "},
    )
    broken = commit(denv.repo, "shop 1.2.0 (broken)")
    before = _state(denv)
    code, out = denv.deploy(broken)
    assert code == 8, out
    assert "failed" in out["message"] and "put back" in out["message"]
    _same(_state(denv), before)
    assert denv.current() == first
    status, body = http_json(f"{denv.url}/web/health")
    assert status == 200 and body == {"status": "pass"}
    code, status_out = denv.cli_json("odoo", "status", denv.env_name)
    assert status_out["commit"] == first and status_out["last_run"]["status"] == "failed"
    run = status_out["last_run"]["run_id"]
    evidence = denv.root / ".liftgate" / "evidence" / run
    assert verify_bundle(evidence) == []
    assert "cannot migrate" in (evidence / "update.log").read_text()
    rollback = json.loads((evidence / "rollback.json").read_text())
    assert "database" in rollback["reverted"] and rollback["errors"] == []


def test_failing_smoke_check_puts_everything_back(tmp_path: Path, pg_cluster: PgCluster) -> None:
    d = make_deploy_env(tmp_path, pg_cluster, smoke_text="this text is on no page")
    try:
        before = _state(d)
        code, out = d.deploy(git(d.repo, "rev-parse", "HEAD"), "--install", "shop")
        assert code == 8 and "smoke check /web/login failed" in out["message"], out
        _same(_state(d), before)
        assert d.current() is None and _checksums_param(d) is None
    finally:
        d.stop_service()


def test_enterprise_module_refused_before_any_change(denv: DeployEnv) -> None:
    first = _first_deploy(denv)
    write_module(denv.repo, "shop_studio", version="1.0.0", depends=("shop", "web_studio"))
    write_module(denv.repo, "shop_sub", version="1.0.0", depends=("shop",), license="OEEL-1")
    write_module(denv.repo, "shop_paid", version="1.0.0", depends=("shop",), license="OPL-1")
    sha = commit(denv.repo, "enterprise bits")
    before = _state(denv)
    code, out = denv.deploy(sha)
    assert code == 3, out
    assert "shop_studio" in out["message"] and "shop_sub" in out["message"]
    assert "shop_paid" not in out["message"]
    _same(_state(denv), before)
    assert denv.current() == first
    assert not (denv.releases / "releases" / sha).exists()


def test_unknown_commit_is_refused(denv: DeployEnv) -> None:
    before = _state(denv)
    code, out = denv.deploy("0123456789abcdef0123456789abcdef01234567")
    assert code == 2 and "does not exist" in out["message"], out
    code, out = denv.deploy("--upload-pack=touch /tmp/x")
    assert code == 2, out
    _same(_state(denv), before)


def test_two_deploys_at_once_one_is_refused(denv: DeployEnv, tmp_path: Path) -> None:
    sha = git(denv.repo, "rev-parse", "HEAD")
    markers = tmp_path / "markers"
    markers.mkdir()
    proc, marker = start_paused(
        ["odoo", "deploy", denv.env_name, "--commit", sha, "--install", "shop"],
        denv.root,
        "deploy.update.before",
        markers,
    )
    try:
        code, out = denv.deploy(sha, "--install", "shop")
        assert code == 4 and "lock" in out["message"].lower(), out
    finally:
        marker.unlink()
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert denv.current() == sha


@pytest.mark.parametrize(
    "point", ["deploy.way_back.after", "deploy.update.after", "deploy.switch.after"]
)
def test_killed_deploy_is_put_back_by_recover(denv: DeployEnv, tmp_path: Path, point: str) -> None:
    first = _first_deploy(denv)
    write_module(
        denv.repo,
        "shop",
        version="1.3.0",
        depends=("base", "mail"),
        files={"standin_update.sql": "UPDATE res_partner SET name = 'v13' WHERE id < 5;"},
    )
    sha = commit(denv.repo, "shop 1.3.0")
    before = _state(denv)
    markers = tmp_path / "markers"
    markers.mkdir()
    proc, marker = start_paused(
        ["odoo", "deploy", denv.env_name, "--commit", sha], denv.root, point, markers
    )
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    marker.unlink(missing_ok=True)
    code, out = denv.cli_json("recover")
    assert code == 0, out
    _same(_state(denv), before)
    assert denv.current() == first
    status, body = http_json(f"{denv.url}/web/health")
    assert status == 200 and body == {"status": "pass"}
    # and the same commit deploys afterwards
    code, out = denv.deploy(sha)
    assert code == 0 and out["updated"] == ["shop"], out


def test_production_takes_a_verified_backup_first(tmp_path: Path, pg_cluster: PgCluster) -> None:
    d = make_deploy_env(tmp_path, pg_cluster, role="production", env_name="prod")
    try:
        code, out = d.deploy(git(d.repo, "rev-parse", "HEAD"), "--install", "shop")
        assert code == 0, out
        way_back = json.loads((Path(out["evidence_path"]) / "backup.json").read_text())
        artifact = way_back["backup"]["artifact_id"]
        code, shown = d.cli_json("artifacts", "verify", artifact)
        assert code == 0, shown
    finally:
        d.stop_service()


def test_env_with_slots_receives_code_only_through_promotion(denv: DeployEnv) -> None:
    config = denv.root / "liftgate.toml"
    text = config.read_text().replace('role = "staging"', 'role = "production"')
    text += (
        '\n[env.staging.slots.blue]\ndb = "b"\n[env.staging.slots.green]\ndb = "g"\n'
        '[env.staging.switch]\nkind = "symlink"\nlink = "live"\n'
        'targets = { blue = "b", green = "g" }\n'
    )
    config.write_text(text)
    code, out = denv.deploy("main")
    assert code == 3 and "promot" in out["message"], out


def test_deploy_refuses_bad_module_options(denv: DeployEnv) -> None:
    sha = git(denv.repo, "rev-parse", "HEAD")
    for args, words in (
        (["--install", "nosuch"], "no module nosuch"),
        (["--modules", "shop"], "not installed"),
        (["--modules", "a;b"], "--modules"),
    ):
        code, out = denv.deploy(sha, *args)
        assert code == 2 and words in out["message"], out
    shutil.rmtree(denv.repo)
    code, out = denv.deploy(sha)
    assert code == 2 and "does not exist" in out["message"], out
