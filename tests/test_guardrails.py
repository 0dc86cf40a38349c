"""One test per guardrail: the operation is refused (or changed) when the guardrail
triggers, allowed otherwise, and a project's registry override flips it only together with
``--unsafe-guardrail NAME`` on the command — recorded in the run's ``guardrails.json``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from liftgate.sandbox.cluster import PgCluster
from odoo_standin import commit, git, write_module
from support.deploy_env import DeployEnv, make_deploy_env
from support.odoo_project import OdooProject, make_odoo_project
from support.tree import cli_json


def _override(root: Path, skill: str, guardrails: dict[str, Any]) -> None:
    """Point liftgate.toml at an override registry weakening ``guardrails`` of ``skill``."""
    (root / "override.yaml").write_text(
        "format: liftgate.skills/v1\nskills:\n"
        f"  - id: {skill}\n    guardrails: {json.dumps(guardrails)}\n"
    )
    config = root / "liftgate.toml"
    text = config.read_text()
    if "[skills]" not in text:
        config.write_text(text + '\n[skills]\nregistry = "override.yaml"\n')


def _recorded(evidence: str | Path, name: str) -> dict[str, Any]:
    data = json.loads((Path(evidence) / "guardrails.json").read_text())
    entry: dict[str, Any] = data["guardrails"][name]
    return entry


# -- file promotion ------------------------------------------------------------------------


@pytest.fixture
def files_proj(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / "docs").mkdir(parents=True)
    (root / "staged").mkdir()
    (root / "liftgate.toml").write_text(
        '[project]\nroots = ["."]\n\n[[files.verify]]\nglob = "docs/*.md"\nstarts_with = "# M2M"\n'
    )
    (root / "docs" / "a.md").write_text("# M2M\nold\n")
    (root / "staged" / "a.md").write_text("# M2M\nnew\n")
    (root / "staged" / "bad.md").write_text("no marker\n")
    return root


def test_backup_before_write(files_proj: Path) -> None:
    args = ["promote", "staged/a.md", "--target", "docs/a.md", "--no-backup"]
    code, out = cli_json(args, files_proj)
    assert code == 3 and "backup_before_write" in out["message"], out
    _override(files_proj, "stage-promote-safe", {"backup_before_write": False})
    code, out = cli_json(args, files_proj)
    assert code == 3 and "--unsafe-guardrail backup_before_write" in out["message"], out
    assert (files_proj / "docs" / "a.md").read_text() == "# M2M\nold\n"
    code, out = cli_json([*args, "--unsafe-guardrail", "backup_before_write"], files_proj)
    assert code == 0, out
    assert (files_proj / "docs" / "a.md").read_text() == "# M2M\nnew\n"
    entry = _recorded(out["evidence_path"], "backup_before_write")
    assert entry["unsafe_acknowledged"] is True and entry["value"] is False


def test_verify_after_write(files_proj: Path) -> None:
    args = ["promote", "staged/bad.md", "--target", "docs/a.md"]
    code, out = cli_json(args, files_proj)
    assert code == 3 and "verify_after_write" in out["message"], out
    code, out = cli_json(["promote", "staged/a.md", "--target", "docs/a.md"], files_proj)
    assert code == 0, out  # passes its rules: allowed
    assert _recorded(out["evidence_path"], "verify_after_write")["outcomes"][0]["outcome"] == (
        "enforced"
    )
    _override(files_proj, "stage-promote-safe", {"verify_after_write": False})
    code, out = cli_json(args, files_proj)
    assert code == 3 and "--unsafe-guardrail verify_after_write" in out["message"], out
    code, out = cli_json([*args, "--unsafe-guardrail", "verify_after_write"], files_proj)
    assert code == 0, out
    assert (files_proj / "docs" / "a.md").read_text() == "no marker\n"


@pytest.mark.parametrize(
    "name", ["explicit_target", "history_required", "evidence_required", "rollback_default"]
)
def test_guardrails_file_promotion_always_holds(files_proj: Path, name: str) -> None:
    args = ["promote", "staged/a.md", "--target", "docs/a.md"]
    if name == "explicit_target":
        code, out = cli_json(["promote", "staged/a.md", "--target", "docs/*.md"], files_proj)
        assert code == 2 and "glob" in out["message"], out  # triggers: refused
    _override(files_proj, "stage-promote-safe", {name: False})
    code, out = cli_json(args, files_proj)
    assert code == 3 and f"--unsafe-guardrail {name}" in out["message"], out
    code, out = cli_json([*args, "--unsafe-guardrail", name], files_proj)
    assert code == 0, out
    entry = _recorded(out["evidence_path"], name)
    assert entry["unsafe_acknowledged"] is True
    assert "still held" in entry["outcomes"][0]["detail"]
    assert (Path(out["evidence_path"]) / "MANIFEST.sha256").is_file()
    code, history = cli_json(["history", "verify"], files_proj)
    assert code == 0, history


def test_unknown_unsafe_name_is_refused(files_proj: Path) -> None:
    code, out = cli_json(
        ["promote", "staged/a.md", "--target", "docs/a.md", "--unsafe-guardrail", "nope"],
        files_proj,
    )
    assert code == 2, out
    assert (files_proj / "docs" / "a.md").read_text() == "# M2M\nold\n"


# -- backups: retention --------------------------------------------------------------------


def test_retention_policy_default(files_proj: Path) -> None:
    code, out = cli_json(["artifacts", "prune", "--dry-run"], files_proj)
    assert code == 0, out
    entry = out["guardrails"]["guardrails"]["retention_policy_default"]
    assert entry["value"] == {"daily": 7, "weekly": 4, "monthly": 3}
    _override(
        files_proj,
        "backup-odoo-environment",
        {"retention_policy_default": {"daily": 1, "weekly": 0, "monthly": 0}},
    )
    code, out = cli_json(["artifacts", "prune", "--dry-run"], files_proj)
    assert code == 3 and "retention_policy_default" in out["message"], out
    code, out = cli_json(
        ["artifacts", "prune", "--dry-run", "--unsafe-guardrail", "retention_policy_default"],
        files_proj,
    )
    assert code == 0 and out["message"].startswith("keep 1 daily:"), out


# -- Odoo restore --------------------------------------------------------------------------


@pytest.fixture
def odoo(tmp_path: Path, pg_cluster: PgCluster) -> OdooProject:
    return make_odoo_project(tmp_path / "proj", pg_cluster, partners=40, attachments=5)


def _backup(p: OdooProject) -> str:
    code, out = cli_json(["odoo", "backup", "prod"], p.root)
    assert code == 0, out
    return str(out["artifact_id"])


def test_neutralize_non_production(odoo: OdooProject) -> None:
    artifact = _backup(odoo)
    args = ["odoo", "restore", artifact, "--env", "staging", "--no-neutralize"]
    code, out = cli_json(args, odoo.root)
    assert code == 3 and "neutralize_non_production" in out["message"], out
    with odoo.admin() as admin:
        exists = admin.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (odoo.staging_db,)
        ).fetchone()
    assert exists is None
    _override(odoo.root, "restore-odoo-environment", {"neutralize_non_production": False})
    code, out = cli_json(args, odoo.root)
    assert code == 3 and "--unsafe-guardrail" in out["message"], out
    code, out = cli_json([*args, "--unsafe-guardrail", "neutralize_non_production"], odoo.root)
    assert code == 0, out
    with psycopg.connect(odoo.conninfo(odoo.staging_db)) as conn:
        row = conn.execute("SELECT count(*) FROM ir_mail_server WHERE active").fetchone()
        invalid = conn.execute(
            "SELECT count(*) FROM ir_mail_server WHERE smtp_host = 'invalid'"
        ).fetchone()
    assert row and row[0] > 0 and invalid == (0,)  # not neutralized


def test_restore_never_drops_first(odoo: OdooProject) -> None:
    artifact = _backup(odoo)
    code, out = cli_json(["odoo", "restore", artifact, "--env", "staging"], odoo.root)
    assert code == 0, out
    code, out = cli_json(["odoo", "restore", artifact, "--env", "staging", "--force"], odoo.root)
    assert code == 0, out
    kept = out["previous_db"]
    with odoo.admin() as admin:
        assert admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (kept,)).fetchone()
    _override(odoo.root, "restore-odoo-environment", {"restore_never_drops_first": False})
    args = ["odoo", "restore", artifact, "--env", "staging", "--force"]
    code, out = cli_json(args, odoo.root)
    assert code == 3 and "--unsafe-guardrail" in out["message"], out
    code, out = cli_json([*args, "--unsafe-guardrail", "restore_never_drops_first"], odoo.root)
    assert code == 0, out
    dropped = out["previous_db"]
    with odoo.admin() as admin:
        row = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dropped,)).fetchone()
    assert row is None
    entry = _recorded(out["evidence_path"], "restore_never_drops_first")
    assert entry["outcomes"][-1]["outcome"] == "disabled_unsafe"


# -- deploy --------------------------------------------------------------------------------


@pytest.fixture
def denv(tmp_path: Path, pg_cluster: PgCluster) -> Iterator[DeployEnv]:
    env = make_deploy_env(tmp_path, pg_cluster)
    try:
        yield env
    finally:
        env.stop_service()


def test_forbid_enterprise_modules(denv: DeployEnv) -> None:
    code, out = denv.deploy(git(denv.repo, "rev-parse", "HEAD"), "--install", "shop")
    assert code == 0, out  # no Enterprise module: allowed
    write_module(denv.repo, "shop_studio", depends=("shop", "web_studio"))
    sha = commit(denv.repo, "studio")
    code, out = denv.deploy(sha)
    assert code == 3 and "shop_studio" in out["message"], out
    _override(denv.root, "deploy-odoo-modules-git", {"forbid_enterprise_modules": False})
    code, out = denv.deploy(sha)
    assert code == 3 and "--unsafe-guardrail" in out["message"], out
    code, out = denv.deploy(sha, "--unsafe-guardrail", "forbid_enterprise_modules")
    assert code == 0, out
    assert denv.current() == sha


def test_rollback_default_and_backup_before_write_on_deploy(denv: DeployEnv) -> None:
    first = git(denv.repo, "rev-parse", "HEAD")
    code, out = denv.deploy(first, "--install", "shop")
    assert code == 0, out
    write_module(denv.repo, "shop", version="1.5.0", depends=("base", "mail"),
                 extra_manifest={"standin_fail": "broken"})  # fmt: skip
    broken = commit(denv.repo, "broken")
    code, out = denv.deploy(broken)
    assert code == 8 and "put back" in out["message"], out  # triggers: put back
    _override(
        denv.root,
        "deploy-odoo-modules-git",
        {"rollback_default": False, "backup_before_write": False},
    )
    code, out = denv.deploy(broken, "--unsafe-guardrail", "rollback_default")
    assert code == 3 and "backup_before_write" in out["message"], out
    code, out = denv.deploy(
        broken,
        "--unsafe-guardrail",
        "rollback_default",
        "--unsafe-guardrail",
        "backup_before_write",
    )
    assert code == 8, out
    run = out["message"].rsplit("(run ", 1)[1].rstrip(")")
    evidence = denv.root / ".liftgate" / "evidence" / run
    backup = json.loads((evidence / "backup.json").read_text())
    assert backup["db_copy"] is None  # no way back was made
    assert _recorded(evidence, "rollback_default")["outcomes"][-1]["outcome"] == ("disabled_unsafe")


# -- promotion -----------------------------------------------------------------------------


def test_prod_requires_staging_success(tmp_path: Path, pg_cluster: PgCluster) -> None:
    from support.promote_env import make_promote_env

    p = make_promote_env(tmp_path, pg_cluster)
    try:
        write_module(p.repo, "shop", version="1.9.0", extra_manifest={"standin_fail": "no"})
        bad = commit(p.repo, "broken on staging")
        code, out = p.cli_json("odoo", "deploy", "staging", "--commit", bad)
        assert code == 8, out  # staging's last deploy failed
        code, out = p.promote("--approve")
        assert code == 3 and "(1)" in out["message"], out  # triggers: refused
        _override(p.root, "promote-staging-to-prod", {"prod_requires_staging_success": False})
        code, out = p.promote("--approve")
        assert code == 3 and "--unsafe-guardrail" in out["message"], out
        code, out = p.promote("--approve", "--unsafe-guardrail", "prod_requires_staging_success")
        assert code == 0, out
        assert out["active"] == "green" and out["commit"] == p.staged_commit
        entry = _recorded(out["evidence_path"], "prod_requires_staging_success")
        assert entry["outcomes"][0]["outcome"] == "disabled_unsafe"
        pre = json.loads((Path(out["evidence_path"]) / "preconditions.json").read_text())
        assert pre["waived"] == [1, 2]
    finally:
        p.stop()
