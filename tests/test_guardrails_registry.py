"""liftgate.engine.guardrails: known guardrails, values per skill, the project's override
and --unsafe-guardrail, outcomes and guardrails.json."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from liftgate.config import Config, load_config
from liftgate.engine.guardrails import KNOWN, OUTCOMES, Guardrails
from liftgate.engine.project import Project
from liftgate.errors import ConfigError, GuardrailError, UsageError
from liftgate.skills import REGISTRY_PATH, shipped_registry

OVERRIDES = Path(__file__).parent / "fixtures" / "skills" / "overrides"
BOOLS = {
    "explicit_target",
    "backup_before_write",
    "history_required",
    "verify_after_write",
    "prod_requires_staging_success",
    "forbid_enterprise_modules",
    "rollback_default",
    "evidence_required",
    "neutralize_non_production",
    "restore_never_drops_first",
}


def _config(tmp_path: Path, override: str | None) -> Config:
    text = '[project]\nroots = ["."]\n'
    if override is not None:
        text += f'\n[skills]\nregistry = "{OVERRIDES / override}"\n'
    (tmp_path / "liftgate.toml").write_text(text)
    return load_config(cwd=tmp_path)


# the known guardrails -----------------------------------------------------------------------
def test_known_guardrails_and_their_types() -> None:
    assert BOOLS | {"retention_policy_default"} <= set(KNOWN)
    for name in BOOLS:
        spec = KNOWN[name]
        assert spec.name == name and spec.value_type == "bool" and spec.default is True
        assert spec.description
    retention = KNOWN["retention_policy_default"]
    assert retention.value_type == "retention"
    assert dict(retention.default) == {"daily": 7, "weekly": 4, "monthly": 3}
    assert retention.problem(retention.default) is None


@pytest.mark.parametrize("value", ["yes", "true", 1, 0, None, [True]])
def test_a_bool_guardrail_takes_only_a_real_bool(value: object) -> None:
    problem = KNOWN["backup_before_write"].problem(value)
    assert problem == f"must be a boolean (true or false), not {value!r}"
    assert KNOWN["backup_before_write"].problem(False) is None


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ({"daily": 7, "weekly": 4}, "must be a mapping with exactly daily, weekly and monthly"),
        ({"daily": 7, "weekly": 4, "monthly": 3, "yearly": 1}, "must be a mapping with exactly"),
        ({"daily": 7, "weekly": -1, "monthly": 3}, "weekly must be a count of 0 or more"),
        ({"daily": True, "weekly": 4, "monthly": 3}, "daily must be a count of 0 or more"),
        ({"daily": "7", "weekly": 4, "monthly": 3}, "daily must be a count of 0 or more"),
        ({"daily": 0, "weekly": 0, "monthly": 0}, "keeps nothing"),
        (7, "must be a mapping with exactly daily, weekly and monthly"),
    ],
)
def test_retention_values(value: object, problem: str) -> None:
    found = KNOWN["retention_policy_default"].problem(value)
    assert found is not None and found.startswith(problem)


def test_weaker() -> None:
    flag = KNOWN["verify_after_write"]
    assert flag.weaker(False, True) and not flag.weaker(True, False)
    assert not flag.weaker(True, True) and not flag.weaker(False, False)
    keep = KNOWN["retention_policy_default"]
    base = {"daily": 7, "weekly": 4, "monthly": 3}
    assert keep.weaker({"daily": 6, "weekly": 9, "monthly": 9}, base)
    assert not keep.weaker({"daily": 7, "weekly": 5, "monthly": 3}, base)


# values per skill ---------------------------------------------------------------------------
def test_defaults_are_the_shipped_values(project: Project) -> None:
    for skill_id, entry in shipped_registry().skills.items():
        g = Guardrails.for_skill(project, skill_id)
        assert g.names == tuple(entry.guardrails)
        for name, value in entry.guardrails.items():
            assert g.value(name) == value
    g = Guardrails.for_skill(project, "stage-promote-safe")
    assert all(g.enabled(n) for n in g.names)
    doc = g.as_json()
    assert doc["override"] is None and doc["unsafe"] == []
    assert doc["registry"] == str(REGISTRY_PATH)
    assert {e["source"] for e in doc["guardrails"].values()} == {"shipped"}


def test_for_skill_takes_a_config_too(tmp_path: Path) -> None:
    g = Guardrails.for_skill(_config(tmp_path, None), "backup-odoo-environment")
    assert g.value("retention_policy_default") == {"daily": 7, "weekly": 4, "monthly": 3}
    with pytest.raises(TypeError):
        g.enabled("retention_policy_default")


def test_unknown_skill_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no skill 'no-such-skill'"):
        Guardrails.for_skill(_config(tmp_path, None), "no-such-skill")


# the project's override ---------------------------------------------------------------------
def test_weakening_override_is_refused_without_unsafe(tmp_path: Path) -> None:
    config = _config(tmp_path, "weaken-backup.yaml")
    with pytest.raises(GuardrailError) as caught:
        Guardrails.for_skill(config, "stage-promote-safe")
    err = caught.value
    assert err.exit_code == 3
    path = OVERRIDES / "weaken-backup.yaml"
    assert err.message == (
        f"{path} weakens guardrail backup_before_write (true -> false) of skill "
        "stage-promote-safe; refusing unless the command is given "
        "--unsafe-guardrail backup_before_write"
    )
    assert err.hint is not None and "--unsafe-guardrail backup_before_write" in err.hint
    # skills the override does not touch are not affected
    assert Guardrails.for_skill(config, "deploy-odoo-modules-git").enabled("backup_before_write")


def test_weakening_override_is_honoured_with_unsafe(tmp_path: Path) -> None:
    config = _config(tmp_path, "weaken-backup.yaml")
    g = Guardrails.for_skill(config, "stage-promote-safe", ["backup_before_write"])
    assert not g.enabled("backup_before_write")
    assert g.enabled("history_required")
    g.check("backup_before_write", False, "no backup of docs/a.md was taken")
    entry = g.as_json()["guardrails"]["backup_before_write"]
    assert entry == {
        "value": False,
        "shipped": True,
        "source": "override",
        "weakened": True,
        "unsafe_acknowledged": True,
        "description": KNOWN["backup_before_write"].description,
        "outcomes": [
            {
                "outcome": "disabled_unsafe",
                "detail": "not enforced, would have refused: no backup of docs/a.md was taken",
            }
        ],
    }
    assert g.as_json()["unsafe"] == ["backup_before_write"]
    assert g.as_json()["override"] == str(OVERRIDES / "weaken-backup.yaml")


def test_every_weakened_guardrail_needs_its_own_flag(tmp_path: Path) -> None:
    config = _config(tmp_path, "weaken-two.yaml")
    with pytest.raises(GuardrailError) as caught:
        Guardrails.for_skill(config, "stage-promote-safe", ["backup_before_write"])
    assert "guardrail history_required (true -> false)" in caught.value.message
    assert "backup_before_write (" not in caught.value.message
    g = Guardrails.for_skill(
        config, "stage-promote-safe", ["backup_before_write", "history_required"]
    )
    assert not g.enabled("backup_before_write") and not g.enabled("history_required")


def test_an_override_that_keeps_or_raises_a_value_needs_no_flag(tmp_path: Path) -> None:
    g = Guardrails.for_skill(_config(tmp_path, "same-value.yaml"), "stage-promote-safe")
    entry = g.as_json()["guardrails"]["backup_before_write"]
    assert entry["source"] == "override" and entry["weakened"] is False
    longer = Guardrails.for_skill(
        _config(tmp_path, "longer-retention.yaml"), "backup-odoo-environment"
    )
    value = longer.value("retention_policy_default")
    assert value == {"daily": 14, "weekly": 8, "monthly": 12}
    value["daily"] = 0  # a copy: the guardrail keeps its value
    assert longer.value("retention_policy_default")["daily"] == 14


def test_lowering_retention_needs_the_flag(tmp_path: Path) -> None:
    config = _config(tmp_path, "shorter-retention.yaml")
    with pytest.raises(GuardrailError, match=r"retention_policy_default \(daily 7/weekly 4/"):
        Guardrails.for_skill(config, "backup-odoo-environment")
    g = Guardrails.for_skill(config, "backup-odoo-environment", ["retention_policy_default"])
    assert g.value("retention_policy_default") == {"daily": 3, "weekly": 4, "monthly": 3}


@pytest.mark.parametrize(
    ("override", "unsafe", "message"),
    [
        (None, "no_such_guardrail", "--unsafe-guardrail no_such_guardrail: there is no such"),
        (
            "weaken-backup.yaml",
            "neutralize_non_production",
            "--unsafe-guardrail neutralize_non_production: guardrail neutralize_non_production "
            "does not apply to skill stage-promote-safe",
        ),
        (
            "weaken-backup.yaml",
            "history_required",
            "does not weaken history_required for skill stage-promote-safe; there is nothing to "
            "acknowledge",
        ),
        (
            "same-value.yaml",
            "backup_before_write",
            "does not weaken backup_before_write for skill stage-promote-safe",
        ),
        (
            None,
            "backup_before_write",
            "--unsafe-guardrail backup_before_write: the override registry does not weaken",
        ),
    ],
)
def test_bad_unsafe_names_are_usage_errors(
    tmp_path: Path, override: str | None, unsafe: str, message: str
) -> None:
    config = _config(tmp_path, override)
    with pytest.raises(UsageError) as caught:
        Guardrails.for_skill(config, "stage-promote-safe", ["backup_before_write", unsafe])
    assert message in caught.value.message
    assert caught.value.exit_code == 2


@pytest.mark.parametrize(
    ("override", "rule", "what"),
    [
        ("unknown-skill.yaml", "override-skill", "skill 'no-such-skill' is not a skill liftgate"),
        (
            "undeclared.yaml",
            "guardrail-undeclared",
            "skill stage-promote-safe: guardrail neutralize_non_production does not apply",
        ),
        (
            "wrong-type.yaml",
            "guardrail-type",
            "guardrail backup_before_write must be a boolean (true or false), not 'no'",
        ),
        ("extra-key.yaml", "schema", "Additional properties are not allowed ('version'"),
        ("missing.yaml", "registry", "does not exist"),
    ],
)
def test_an_invalid_override_is_a_config_error(
    tmp_path: Path, override: str, rule: str, what: str
) -> None:
    config = _config(tmp_path, override)
    with pytest.raises(ConfigError) as caught:
        Guardrails.for_skill(config, "stage-promote-safe")
    assert caught.value.message.startswith("the skills registry override is invalid: ")
    assert f"{OVERRIDES / override}: {rule}: " in caught.value.message
    assert what in caught.value.message


# enforcing and recording --------------------------------------------------------------------
def test_check_and_record(project: Project) -> None:
    g = Guardrails.for_skill(project, "deploy-odoo-modules-git")
    g.check("explicit_target", True, "env staging, commit 3f2a9c1")
    with pytest.raises(GuardrailError) as caught:
        g.check("forbid_enterprise_modules", False, "module sale_subscription is OEEL-1")
    assert caught.value.message == "forbid_enterprise_modules: module sale_subscription is OEEL-1"
    g.record("rollback_default", "not_applicable", "the deploy succeeded")
    doc = g.as_json()
    assert doc["skill"] == "deploy-odoo-modules-git"
    outcomes = {n: e["outcomes"] for n, e in doc["guardrails"].items()}
    assert outcomes["explicit_target"] == [
        {"outcome": "enforced", "detail": "env staging, commit 3f2a9c1"}
    ]
    assert outcomes["forbid_enterprise_modules"] == [
        {"outcome": "refused", "detail": "module sale_subscription is OEEL-1"}
    ]
    assert outcomes["rollback_default"] == [
        {"outcome": "not_applicable", "detail": "the deploy succeeded"}
    ]
    assert outcomes["evidence_required"] == []
    assert set(doc["guardrails"]) == set(shipped_registry().skills[g.skill_id].guardrails)


def test_misuse_is_a_programming_error(project: Project) -> None:
    g = Guardrails.for_skill(project, "stage-promote-safe")
    with pytest.raises(KeyError, match="not declared for skill stage-promote-safe"):
        g.enabled("neutralize_non_production")
    with pytest.raises(KeyError):
        g.record("no_such_guardrail", "enforced", "")
    with pytest.raises(ValueError, match="unknown guardrail outcome"):
        g.record("explicit_target", "passed", "")
    assert {"enforced", "refused", "not_applicable", "disabled_unsafe"} <= OUTCOMES


def test_build_merges_plain_mappings() -> None:
    shipped: dict[str, Any] = {"explicit_target": True, "rollback_default": True}
    g = Guardrails.build("demo", shipped, {"rollback_default": False}, unsafe=["rollback_default"])
    assert g.enabled("explicit_target") and not g.enabled("rollback_default")
    g.check("rollback_default", True, "nothing to put back")
    assert g.as_json()["guardrails"]["rollback_default"]["outcomes"] == [
        {"outcome": "disabled_unsafe", "detail": "nothing to put back"}
    ]
    off = Guardrails.build("demo", {"rollback_default": False})
    off.check("rollback_default", False, "x")  # off in the shipped values: recorded only
    assert off.as_json()["guardrails"]["rollback_default"]["outcomes"][0]["outcome"] == "disabled"
    with pytest.raises(ConfigError, match="not known to liftgate"):
        Guardrails.build("demo", {"no_such_guardrail": True})
    with pytest.raises(ConfigError, match="must be a boolean"):
        Guardrails.build("demo", {"explicit_target": "yes"})


# the parse kept in the state dir ------------------------------------------------------------
def _own_override(tmp_path: Path, fixture: str) -> tuple[Path, Config]:
    """A project whose override is a copy of ``fixture`` that the test may edit."""
    override = tmp_path / "override.yaml"
    override.write_text((OVERRIDES / fixture).read_text())
    return override, _config(tmp_path, str(override))  # OVERRIDES / an absolute path = it


def test_registries_are_kept_parsed_in_the_state_dir_and_an_edit_is_seen(tmp_path: Path) -> None:
    override, config = _own_override(tmp_path, "same-value.yaml")
    # without keep_parse (a dry run, say) nothing is written
    assert Guardrails.for_skill(config, "stage-promote-safe").enabled("backup_before_write")
    assert not (config.state_dir / "cache").exists()
    g = Guardrails.for_skill(config, "stage-promote-safe", keep_parse=True)
    assert g.enabled("backup_before_write")
    kept = sorted((config.state_dir / "cache").iterdir())
    assert len(kept) == 2  # the shipped registry and the override, each under its content hash
    # an edited override is read again (a new content hash), not served from what was kept
    override.write_text((OVERRIDES / "weaken-backup.yaml").read_text())
    with pytest.raises(GuardrailError, match="weakens guardrail backup_before_write"):
        Guardrails.for_skill(config, "stage-promote-safe", keep_parse=True)
    assert len(list((config.state_dir / "cache").iterdir())) == 3


def test_a_damaged_kept_parse_is_parsed_again(tmp_path: Path) -> None:
    _, config = _own_override(tmp_path, "weaken-backup.yaml")
    with pytest.raises(GuardrailError):
        Guardrails.for_skill(config, "stage-promote-safe", keep_parse=True)
    for kept in (config.state_dir / "cache").iterdir():
        kept.write_text("{not json")
    with pytest.raises(GuardrailError, match="weakens guardrail backup_before_write"):
        Guardrails.for_skill(config, "stage-promote-safe")


def test_a_file_promotion_does_not_load_pyyaml_once_the_registry_is_kept(tmp_path: Path) -> None:
    import subprocess
    import sys

    (tmp_path / "liftgate.toml").write_text('[project]\nroots = ["."]\n')
    (tmp_path / "live.txt").write_text("old\n")
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from liftgate.engine.project import Project\n"
        "from liftgate.files.api import promote\n"
        "p = Project.open(cwd=Path(sys.argv[1]))\n"
        "(p.cwd / 'staged.txt').write_text(sys.argv[2])\n"
        "assert promote(p, 'staged.txt', 'live.txt').status == 'OK'\n"
        "print('yaml' in sys.modules)\n"
    )
    runs = [
        subprocess.run(
            [sys.executable, "-c", script, str(tmp_path), f"new {n}\n"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for n in (1, 2)
    ]
    assert runs == ["True", "False"]
