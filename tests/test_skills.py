"""Skills: the shipped SKILL.md files and registry, ``liftgate skills``, and the evidence
file lists checked against real runs."""

from __future__ import annotations

import functools
import json
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped,unused-ignore]
import pytest
import typer

from liftgate.cli import filecmd
from liftgate.cli.app import app
from liftgate.sandbox.cluster import PgCluster
from liftgate.skills import (
    EVIDENCE_FILES,
    EVIDENCE_WHEN_ROLLED_BACK,
    REGISTRY_PATH,
    SCHEMA_PATH,
    SKILLS_DIR,
    check_skills,
    shipped_registry,
)
from liftgate.skills.evidence import BASE_FILES, summary_name
from liftgate.skills.skillmd import ALLOWED_KEYS, check_skill_md
from support.odoo_project import make_odoo_project
from support.tree import cli_json, run_cli

FIXTURES = Path(__file__).parent / "fixtures" / "skills"
SHIPPED = (
    "stage-promote-safe",
    "backup-odoo-environment",
    "restore-odoo-environment",
    "deploy-odoo-modules-git",
    "promote-staging-to-prod",
)
LONG_NAME = "a" + "-bcdefgh" * 8 + "x"


# the shipped skills ---------------------------------------------------------------------
def test_shipped_skills_and_registry_pass_check(tmp_path: Path) -> None:
    code, out = cli_json(["skills", "check"], tmp_path)
    assert code == 0, out
    assert out["status"] == "OK" and out["action"] == "skills check"
    assert out["violations"] == []
    assert str(REGISTRY_PATH) in out["checked"]
    for skill_id in SHIPPED:
        assert str(SKILLS_DIR / skill_id / "SKILL.md") in out["checked"]


def test_shipped_registry_lists_each_skill_folder_once() -> None:
    registry = shipped_registry()
    assert tuple(registry.skills) == SHIPPED
    folders = sorted(p.parent.name for p in SKILLS_DIR.glob("*/SKILL.md"))
    assert folders == sorted(SHIPPED)
    for skill_id, entry in registry.skills.items():
        assert entry.entrypoint == f"{skill_id}/SKILL.md"
        assert entry.type == "procedural"
        doc, problems = check_skill_md(registry.entrypoint(skill_id))
        assert problems == [] and doc is not None
        assert doc.frontmatter["name"] == skill_id
        assert set(doc.frontmatter) <= set(ALLOWED_KEYS)
        assert 0 < len(doc.description) <= 1024
        assert doc.body_lines < 500
        for section in ("## Inputs", "## Preconditions", "## Steps", "## Guardrails"):
            assert section in doc.body, (skill_id, section)
        for section in ("## Evidence", "## Output contract", "## Exit codes"):
            assert section in doc.body, (skill_id, section)
        for name in entry.guardrails:
            assert f"`{name}`" in doc.body, (skill_id, name)  # each guardrail is explained


def test_registry_schema_is_a_valid_json_schema() -> None:
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)


def test_package_data_ships_skill_files() -> None:
    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    globs = pyproject["tool"]["setuptools"]["package-data"]["liftgate"]
    package = SKILLS_DIR.parent
    shipped = {p for pattern in globs for p in package.glob(pattern) if p.is_file()}
    wanted = {REGISTRY_PATH, SCHEMA_PATH, *(SKILLS_DIR / s / "SKILL.md" for s in SHIPPED)}
    assert wanted <= shipped


def _commands_in(text: str) -> list[str]:
    found = re.findall(r"`(liftgate [^`]+)`", text)
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.DOTALL):
        found += [ln.strip() for ln in block.splitlines() if ln.strip().startswith("liftgate ")]
    return found


@functools.cache
def _cli_tree() -> Any:
    # typer vendors its own click: the tree is walked by its attributes
    return typer.main.get_command(app)


def _check_command(line: str) -> str | None:
    """Why ``line`` is not a command of the real CLI (None when it is)."""
    words = shlex.split(line)[1:]
    if words and words[0] in filecmd.ACTIONS:  # parsed by filecmd, not by the Typer app
        options = filecmd.option_names(words[0])
        unknown = [w for w in words[1:] if w.startswith("--") and w.split("=")[0] not in options]
        return f"{line!r}: unknown option {unknown[0]}" if unknown else None
    command = _cli_tree()
    while words and hasattr(command, "commands") and not words[0].startswith("-"):
        if words[0] not in command.commands:
            return f"{line!r}: no command {words[0]!r}"
        command, words = command.commands[words[0]], words[1:]
    options = {opt for p in command.params for opt in (*p.opts, *p.secondary_opts)}
    unknown = [w for w in words if w.startswith("--") and w.split("=")[0] not in options]
    return f"{line!r}: unknown option {unknown[0]}" if unknown else None


def test_every_command_in_a_skill_exists_in_the_cli() -> None:
    checked = 0
    for skill_id in SHIPPED:
        text = (SKILLS_DIR / skill_id / "SKILL.md").read_text()
        commands = _commands_in(text)
        assert commands, skill_id
        for line in commands:
            assert _check_command(line) is None, _check_command(line)
            checked += 1
    assert checked > 30
    assert _check_command("liftgate odoo deploy ENV --comit X") is not None
    assert _check_command("liftgate odoo deplo ENV") is not None
    assert _check_command("liftgate promote A --targett B") is not None


def test_skills_list_and_show(tmp_path: Path) -> None:
    code, out = cli_json(["skills", "list"], tmp_path)
    assert code == 0 and out["action"] == "skills list"
    assert [s["id"] for s in out["skills"]] == list(SHIPPED)
    first = out["skills"][0]
    assert first["version"] == "1.0.0" and first["type"] == "procedural"
    assert first["description"].startswith("Promote a staged file")

    path = SKILLS_DIR / "restore-odoo-environment" / "SKILL.md"
    code, shown = cli_json(["skills", "show", "restore-odoo-environment"], tmp_path)
    assert code == 0 and shown["status"] == "OK" and shown["action"] == "skills show"
    assert shown["frontmatter"]["name"] == "restore-odoo-environment"
    text = path.read_text()
    assert shown["body"] == text.split("---\n", 2)[2]  # byte for byte: nothing redacted
    entry = shown["registry"]
    assert entry["id"] == "restore-odoo-environment" and entry["version"] == "1.0.0"
    assert entry["guardrails"]["restore_never_drops_first"] is True
    assert entry["evidence"]["files"] == sorted(EVIDENCE_FILES["restore-odoo-environment"])

    proc = run_cli(["skills", "show", "restore-odoo-environment"], tmp_path)
    assert proc.returncode == 0 and proc.stdout == text

    code, missing = cli_json(["skills", "show", "no-such-skill"], tmp_path)
    assert code == 2 and missing["error"] == "usage" and "no-such-skill" in missing["message"]


# violations -------------------------------------------------------------------------------
FRONTMATTER_CASES = [
    (
        "Bad-Upper",
        "name",
        "'Bad-Upper' has uppercase letters; use lowercase letters, digits and hyphens",
    ),
    ("bad--double", "name", "'bad--double' has a double hyphen; hyphens must be single"),
    (LONG_NAME, "name-length", "is 66 characters long; the limit is 64"),
    ("name-mismatch", "name-folder", "'other-name' is not the folder's name 'name-mismatch'"),
    (
        "extra-key",
        "frontmatter-keys",
        "unknown key 'version' (allowed: name, description, license, compatibility, metadata, "
        "allowed-tools)",
    ),
    ("long-description", "description-length", "is 1025 characters long; the limit is 1024"),
    ("long-body", "body-length", "the body has 501 lines; it must stay under 500"),
    ("bad-metadata", "metadata", "keys and values must be strings: 'retries': 3"),
    ("no-frontmatter", "frontmatter", "the first line must be '---'"),
]


@pytest.mark.parametrize(("folder", "rule", "what"), FRONTMATTER_CASES)
def test_skill_md_rule(folder: str, rule: str, what: str) -> None:
    path = FIXTURES / "frontmatter" / folder
    report = check_skills(None, [path])
    assert [(v.file, v.rule, v.what) for v in report.violations] == [
        (path / "SKILL.md", rule, what)
    ]


REGISTRY_CASES = [
    (
        "unknown-guardrail",
        "guardrail-unknown",
        "skill alpha: guardrail 'backup_everything' is not known to liftgate (known: "
        "explicit_target, backup_before_write, history_required, verify_after_write, "
        "prod_requires_staging_success, forbid_enterprise_modules, rollback_default, "
        "evidence_required, neutralize_non_production, restore_never_drops_first, "
        "retention_policy_default)",
    ),
    (
        "guardrail-type",
        "guardrail-type",
        "skill alpha: guardrail backup_before_write must be a boolean (true or false), not 'yes'",
    ),
    (
        "retention-type",
        "guardrail-type",
        "skill alpha: guardrail retention_policy_default weekly must be a count of 0 or more, "
        "not -1",
    ),
    (
        "dangling-requires",
        "requires",
        "skill alpha requires 'no-such-skill', which is neither a skill of the registry nor a "
        "capability (ops_store, artifact_store, runtime_executor, pg_tools, git, traffic_switch)",
    ),
    ("cycle", "cycle", "skills require each other: alpha -> beta -> gamma -> alpha"),
    ("missing-entrypoint", "entrypoint", "skill alpha: entrypoint gone/SKILL.md does not exist"),
    (
        "entrypoint-name",
        "entrypoint-name",
        "skill alpha: beta/SKILL.md is named 'beta', not the skill's id",
    ),
    (
        "evidence-mismatch",
        "evidence",
        "skill stage-promote-safe: evidence.files: missing guardrails.json; not written by "
        "liftgate: history_entry.json, verification.json",
    ),
    (
        "bad-semver",
        "schema",
        "skills[0] (alpha).version: '1.0' is not a semantic version MAJOR.MINOR.PATCH "
        "(quoted in YAML)",
    ),
    ("unregistered", "unregistered", "skill folder stray has no entry in registry.yaml"),
    ("duplicate-id", "duplicate-id", "skill alpha is listed more than once"),
]


@pytest.mark.parametrize(("folder", "rule", "what"), REGISTRY_CASES)
def test_registry_rule(folder: str, rule: str, what: str) -> None:
    path = FIXTURES / "registries" / folder
    report = check_skills(None, [path])
    assert [(v.file, v.rule, v.what) for v in report.violations] == [
        (path / "registry.yaml", rule, what)
    ]


def test_valid_fixtures_pass() -> None:
    report = check_skills(
        None, [FIXTURES / "registries" / "valid", FIXTURES / "frontmatter" / "good-skill"]
    )
    assert report.violations == []
    # a user's registry may require shipped skills and capabilities
    assert FIXTURES / "registries" / "valid" / "registry.yaml" in report.checked


def test_a_folder_of_skill_folders_is_checked_whole() -> None:
    report = check_skills(None, [FIXTURES / "frontmatter"])
    broken = {v.file.parent.name for v in report.violations}
    assert broken == {case[0] for case in FRONTMATTER_CASES}
    assert len(report.violations) == len(FRONTMATTER_CASES)


def test_bad_paths_are_violations(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    report = check_skills(None, [tmp_path / "gone", tmp_path / "empty"])
    assert [(v.rule, v.what) for v in report.violations] == [
        ("path", "does not exist"),
        ("path", "holds no SKILL.md, no skill folder and no registry.yaml"),
    ]


def test_check_cli_reports_one_line_per_violation(tmp_path: Path) -> None:
    cycle = FIXTURES / "registries" / "cycle"
    double = FIXTURES / "frontmatter" / "bad--double"
    args = ["skills", "check", "--path", str(cycle), "--path", str(double)]
    code, out = cli_json(args, tmp_path)
    assert code == 5
    assert out["status"] == "FAIL" and out["action"] == "skills check"
    assert out["error"] == "skills_invalid" and out["run_id"] is None
    lines = [v["line"] for v in out["violations"]]
    assert lines == [
        f"{cycle / 'registry.yaml'}: cycle: skills require each other: "
        "alpha -> beta -> gamma -> alpha",
        f"{double / 'SKILL.md'}: name: 'bad--double' has a double hyphen; hyphens must be single",
    ]
    assert out["violations"][0]["rule"] == "cycle"
    assert out["message"].startswith("2 violations: ")

    proc = run_cli(args, tmp_path)
    assert proc.returncode == 5
    assert proc.stdout.splitlines() == lines


def test_check_covers_the_projects_override(tmp_path: Path) -> None:
    (tmp_path / "liftgate.toml").write_text(
        f'[skills]\nregistry = "{FIXTURES / "overrides" / "unknown-skill.yaml"}"\n'
    )
    code, out = cli_json(["skills", "check"], tmp_path)
    assert code == 5
    assert [(v["rule"], v["what"]) for v in out["violations"]] == [
        (
            "override-skill",
            "skill 'no-such-skill' is not a skill liftgate ships (shipped: "
            + ", ".join(SHIPPED)
            + ")",
        )
    ]
    (tmp_path / "liftgate.toml").write_text('[skills]\nregistry = "mine.yaml"\n')
    code, out = cli_json(["skills", "check"], tmp_path)
    assert code == 5
    assert out["violations"][0]["line"] == "mine.yaml: registry: does not exist"
    (tmp_path / "mine.yaml").write_text(
        (FIXTURES / "overrides" / "longer-retention.yaml").read_text()
    )
    code, out = cli_json(["skills", "check"], tmp_path)
    assert code == 0, out
    assert str(tmp_path / "mine.yaml") in out["checked"]


# evidence ---------------------------------------------------------------------------------
def test_registry_evidence_is_the_evidence_module() -> None:
    registry = shipped_registry()
    assert set(EVIDENCE_FILES) == set(registry.skills) == set(EVIDENCE_WHEN_ROLLED_BACK)
    for skill_id, entry in registry.skills.items():
        assert entry.evidence.required
        assert entry.evidence.path_pattern == "<evidence_dir>/<run_id>/"
        assert entry.evidence.files == EVIDENCE_FILES[skill_id]
        assert entry.evidence.files_when_rolled_back == EVIDENCE_WHEN_ROLLED_BACK[skill_id]
        assert BASE_FILES | {summary_name(skill_id)} <= EVIDENCE_FILES[skill_id]


def test_deploy_and_promotion_evidence_names_match_the_code() -> None:
    # real deploys and promotions are slow: tests/test_odoo_deploy.py and
    # tests/test_odoo_promote.py run them; here the names the code declares
    from liftgate.odoo import deploy, promote

    assert set(deploy.EVIDENCE) | {"plan.json", "guardrails.json"} == set(
        EVIDENCE_FILES["deploy-odoo-modules-git"]
    )
    assert summary_name("promote-staging-to-prod") == promote.SUMMARY
    assert summary_name("deploy-odoo-modules-git") == "summary.md"


def _written(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def _assert_evidence(folder: Path, skill_id: str, *, rolled_back: bool = False) -> None:
    expected = set(EVIDENCE_FILES[skill_id])
    if rolled_back:
        expected |= EVIDENCE_WHEN_ROLLED_BACK[skill_id]
    written = _written(folder)
    assert written - {"guardrails.json"} == expected - {"guardrails.json"}
    # guardrails.json is written once the operations call liftgate.engine.guardrails
    assert "guardrails.json" in written, f"{folder} has no guardrails.json yet"


def test_files_promote_and_rollback_write_the_listed_evidence(proj_dir: Path) -> None:
    (proj_dir / "docs" / "a.md").write_text("v1\n")
    (proj_dir / "staged" / "a.md").write_text("v2\n")
    code, out = cli_json(["promote", "staged/a.md", "--target", "docs/a.md"], proj_dir)
    assert code == 0, out
    code, back = cli_json(["rollback", "--target", "docs/a.md"], proj_dir)
    assert code == 0, back
    for result in (out, back):
        _assert_evidence(Path(result["evidence_path"]), "stage-promote-safe")


def test_odoo_backup_and_restore_write_the_listed_evidence(
    tmp_path: Path, pg_cluster: PgCluster
) -> None:
    odoo = make_odoo_project(tmp_path / "proj", pg_cluster, partners=20, attachments=3)
    code, made = cli_json(["odoo", "backup", "prod"], odoo.root)
    assert code == 0, made
    code, restored = cli_json(
        ["odoo", "restore", str(made["artifact_id"]), "--env", "staging"], odoo.root
    )
    assert code == 0, restored
    _assert_evidence(Path(made["evidence_path"]), "backup-odoo-environment")
    _assert_evidence(Path(restored["evidence_path"]), "restore-odoo-environment")
