"""Promotion and rollback of files and folders through the library API."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from liftgate.engine.evidence import verify_bundle
from liftgate.engine.project import Project
from liftgate.errors import DriftError, GuardrailError, UsageError
from liftgate.files.api import promote, rollback
from support.tree import cli_json, run_cli, snapshot, start_paused


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_promote_file_then_rollback(project: Project, proj_dir: Path) -> None:
    target = _write(proj_dir / "docs/README.md", "v1\n")
    os.chmod(target, 0o640)
    _write(proj_dir / "staged/README.md", "v2\n")
    res = promote(project, "staged/README.md", "docs/README.md")
    assert res.status == "OK", res.message
    assert target.read_text() == "v2\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640  # a replaced target keeps its mode
    assert res.backup_path is not None and Path(res.backup_path).read_text() == "v1\n"
    assert res.evidence_path is not None
    evidence = Path(res.evidence_path)
    for name in (
        "inputs.json",
        "run_id.txt",
        "plan.json",
        "final_status.json",
        "summary.md",
        "MANIFEST.sha256",
    ):
        assert (evidence / name).is_file(), name
    assert verify_bundle(evidence) == []
    assert (evidence / "run_id.txt").read_text().strip() == res.run_id

    back = rollback(project, "docs/README.md")
    assert back.status == "OK", back.message
    assert target.read_text() == "v1\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert project.history.verify().ok


def test_rollback_repeats_further_back(project: Project, proj_dir: Path) -> None:
    target = _write(proj_dir / "docs/a.md", "v1\n")
    for version in ("v2\n", "v3\n", "v4\n"):
        _write(proj_dir / "staged/a.md", version)
        assert promote(project, "staged/a.md", "docs/a.md").status == "OK"
    assert target.read_text() == "v4\n"
    for expected in ("v3\n", "v2\n", "v1\n"):
        assert rollback(project, "docs/a.md").status == "OK"
        assert target.read_text() == expected
    with pytest.raises(UsageError, match="no promotion"):
        rollback(project, "docs/a.md")


def test_rollback_selection_trap(project: Project, proj_dir: Path) -> None:
    """MY_README.md beside README.md: rollback picks README.md's backup from the history."""
    readme = _write(proj_dir / "docs/README.md", "readme v1\n")
    mine = _write(proj_dir / "docs/MY_README.md", "mine v1\n")
    _write(proj_dir / "staged/README.md", "readme v2\n")
    _write(proj_dir / "staged/MY_README.md", "mine v2\n")
    assert promote(project, "staged/README.md", "docs/README.md").status == "OK"
    assert promote(project, "staged/MY_README.md", "docs/MY_README.md").status == "OK"
    # the newest backup on disk belongs to MY_README.md; a glob/mtime pick would restore it
    assert rollback(project, "docs/README.md").status == "OK"
    assert readme.read_text() == "readme v1\n"
    assert mine.read_text() == "mine v2\n"
    assert rollback(project, "docs/MY_README.md").status == "OK"
    assert mine.read_text() == "mine v1\n"


def test_rollback_of_first_promotion_removes_target(project: Project, proj_dir: Path) -> None:
    _write(proj_dir / "staged/new.md", "brand new\n")
    res = promote(project, "staged/new.md", "docs/new.md")
    assert res.status == "OK" and res.backup_path is None
    assert (proj_dir / "docs/new.md").read_text() == "brand new\n"
    back = rollback(project, "docs/new.md")
    assert back.status == "OK", back.message
    assert not (proj_dir / "docs/new.md").exists()
    assert back.backup_path is not None and Path(back.backup_path).read_text() == "brand new\n"


def test_the_api_takes_path_objects_as_well_as_strings(project: Project, proj_dir: Path) -> None:
    _write(proj_dir / "staged/p.md", "from a Path\n")
    res = promote(project, proj_dir / "staged/p.md", proj_dir / "docs/p.md")
    assert res.status == "OK", res.message
    assert res.target_path == str(proj_dir / "docs/p.md")
    assert (proj_dir / "docs/p.md").read_text() == "from a Path\n"
    assert rollback(project, Path("docs/p.md")).status == "OK"
    assert not (proj_dir / "docs/p.md").exists()


def test_new_target_takes_staged_mode(project: Project, proj_dir: Path) -> None:
    staged = _write(proj_dir / "staged/run.sh", "#!/bin/sh\n")
    os.chmod(staged, 0o751)
    assert promote(project, "staged/run.sh", "docs/run.sh").status == "OK"
    assert stat.S_IMODE((proj_dir / "docs/run.sh").stat().st_mode) == 0o751


def test_drift_refused_without_force(project: Project, proj_dir: Path) -> None:
    target = _write(proj_dir / "docs/a.md", "v1\n")
    _write(proj_dir / "staged/a.md", "v2\n")
    assert promote(project, "staged/a.md", "docs/a.md").status == "OK"
    target.write_text("edited by hand\n")
    _write(proj_dir / "staged/a.md", "v3\n")
    before = snapshot(proj_dir, skip=(".liftgate",))
    with pytest.raises(DriftError, match="changed since liftgate last wrote it"):
        promote(project, "staged/a.md", "docs/a.md")
    with pytest.raises(DriftError):
        rollback(project, "docs/a.md")
    assert snapshot(proj_dir, skip=(".liftgate",)) == before
    res = promote(project, "staged/a.md", "docs/a.md", force=True)
    assert res.status == "OK"
    assert target.read_text() == "v3\n"
    assert Path(str(res.backup_path)).read_text() == "edited by hand\n"
    assert rollback(project, "docs/a.md").status == "OK"
    assert target.read_text() == "edited by hand\n"


def test_noop_when_target_already_identical(project: Project, proj_dir: Path) -> None:
    _write(proj_dir / "docs/a.md", "same\n")
    _write(proj_dir / "staged/a.md", "same\n")
    res = promote(project, "staged/a.md", "docs/a.md")
    assert res.status == "NOOP"
    assert project.history.verify().count == 0


def test_no_backup_needs_config_and_blocks_rollback(proj_dir: Path) -> None:
    _write(proj_dir / "docs/a.md", "v1\n")
    _write(proj_dir / "staged/a.md", "v2\n")
    project = Project.open(cwd=proj_dir)
    with pytest.raises(GuardrailError, match="backup_before_write: --no-backup asks"):
        promote(project, "staged/a.md", "docs/a.md", no_backup=True)
    project.close()
    (proj_dir / "liftgate.toml").write_text(
        '[project]\nroots = ["."]\n[skills]\nregistry = "override.yaml"\n'
    )
    (proj_dir / "override.yaml").write_text(
        "format: liftgate.skills/v1\nskills:\n  - id: stage-promote-safe\n"
        "    guardrails: {backup_before_write: false}\n"
    )
    project = Project.open(cwd=proj_dir)
    with pytest.raises(GuardrailError, match="--unsafe-guardrail backup_before_write"):
        promote(project, "staged/a.md", "docs/a.md", no_backup=True)
    res = promote(
        project, "staged/a.md", "docs/a.md", no_backup=True, unsafe=["backup_before_write"]
    )
    assert res.status == "OK" and res.backup_path is None
    assert res.evidence_path is not None
    assert '"no_backup": true' in (Path(res.evidence_path) / "plan.json").read_text()
    with pytest.raises(GuardrailError, match="cannot be rolled back"):
        rollback(project, "docs/a.md", unsafe=["backup_before_write"])
    guardrails = json.loads((Path(res.evidence_path) / "guardrails.json").read_text())
    entry = guardrails["guardrails"]["backup_before_write"]
    assert entry["value"] is False and entry["unsafe_acknowledged"] is True
    project.close()


def test_verification_rules_from_config(proj_dir: Path) -> None:
    (proj_dir / "liftgate.toml").write_text(
        '[project]\nroots = ["."]\n'
        '[[files.verify]]\nglob = "docs/*.md"\nstarts_with = "# M2M v1.0"\n'
        '[[files.verify]]\nglob = "docs/*.json"\nparses_as = "json"\n'
        '[[files.verify]]\nglob = "docs/*.yaml"\nparses_as = "yaml"\ncontains = "name:"\n'
    )
    project = Project.open(cwd=proj_dir)
    _write(proj_dir / "staged/good.md", "# M2M v1.0\nbody\n")
    _write(proj_dir / "staged/bad.md", "# Something else\n")
    _write(proj_dir / "staged/bad.json", "{not json")
    _write(proj_dir / "staged/nan.json", '{"ratio": NaN}')  # Python reads it; JSON has no NaN
    _write(proj_dir / "staged/good.yaml", "name: x\n")
    _write(proj_dir / "staged/bad.yaml", "name: [unclosed\n")
    assert promote(project, "staged/good.md", "docs/x.md").status == "OK"
    assert promote(project, "staged/good.yaml", "docs/x.yaml").status == "OK"
    # a stream of documents is YAML too (each one parsed)
    _write(proj_dir / "staged/docs.yaml", "name: a\n---\nname: b\n")
    assert promote(project, "staged/docs.yaml", "docs/x.yaml").status == "OK"
    _write(proj_dir / "staged/bad2.yaml", "name: a\n---\nname: [unclosed\n")
    for staged, target, why in (
        ("staged/bad.md", "docs/y.md", "does not start with"),
        ("staged/bad.json", "docs/y.json", "does not parse as json"),
        ("staged/nan.json", "docs/y.json", r"does not parse as json \(NaN is not a JSON value\)"),
        ("staged/bad.yaml", "docs/x.yaml", "does not parse as yaml"),
        ("staged/bad2.yaml", "docs/x.yaml", "does not parse as yaml"),
    ):
        before = snapshot(proj_dir, skip=(".liftgate",))
        with pytest.raises(GuardrailError, match=why):
            promote(project, staged, target)
        assert snapshot(proj_dir, skip=(".liftgate",)) == before
    with pytest.raises(GuardrailError, match="does not start with 'X'"):
        promote(project, "staged/good.md", "docs/z.md", expect_prefix="X")
    project.close()


def test_promote_directory_and_rollback(project: Project, proj_dir: Path) -> None:
    live = proj_dir / "site"
    _write(live / "index.html", "v1")
    _write(live / "old.html", "gone in v2")
    _write(proj_dir / "staged/site/index.html", "v2")
    _write(proj_dir / "staged/site/sub/page.html", "new page")
    os.symlink("index.html", proj_dir / "staged/site/home.html")
    old = snapshot(live)
    res = promote(project, "staged/site", "site")
    assert res.status == "OK", res.message
    assert snapshot(live) == snapshot(proj_dir / "staged/site")
    assert not any(p.name.startswith(".site.liftgate") for p in proj_dir.iterdir())
    assert rollback(project, "site").status == "OK"
    assert snapshot(live) == old
    # rolling back the first promotion of a new folder removes it
    _write(proj_dir / "staged/other/a.txt", "a")
    assert promote(project, "staged/other", "other").status == "OK"
    assert (proj_dir / "other/a.txt").read_text() == "a"
    assert rollback(project, "other").status == "OK"
    assert not (proj_dir / "other").exists()
    assert project.history.verify().ok


def test_kind_mismatch_refused(project: Project, proj_dir: Path) -> None:
    _write(proj_dir / "docs/a.md", "file")
    _write(proj_dir / "staged/dir/a.md", "x")
    with pytest.raises(UsageError, match="is a file and the staged path is a folder"):
        promote(project, "staged/dir", "docs/a.md")


def test_backup_is_a_hard_link(project: Project, proj_dir: Path) -> None:
    target = _write(proj_dir / "docs/a.md", "v1\n")
    inode = target.stat().st_ino
    _write(proj_dir / "staged/a.md", "v2\n")
    res = promote(project, "staged/a.md", "docs/a.md")
    assert Path(str(res.backup_path)).stat().st_ino == inode


def test_corrupted_backup_refuses_rollback(project: Project, proj_dir: Path) -> None:
    target = _write(proj_dir / "docs/a.md", "v1\n")
    _write(proj_dir / "staged/a.md", "v2\n")
    res = promote(project, "staged/a.md", "docs/a.md")
    backup = Path(str(res.backup_path))
    backup.write_text("tampered\n")
    with pytest.raises(Exception, match="does not match its recorded sha256"):
        rollback(project, "docs/a.md")
    assert target.read_text() == "v2\n"


def test_a_target_name_of_the_longest_length_promotes_and_rolls_back(proj_dir: Path) -> None:
    """The temporary name beside the target (``.NAME.liftgate-RUN``) must fit in 255 bytes
    too: a long name is cut and made unique by a digest of the whole name."""
    name = "n" * 250 + ".md"  # 253 bytes
    wide = "é" * 126  # 252 bytes of UTF-8
    (proj_dir / "staged/a.md").write_text("one\n")
    code, out = cli_json(["promote", "staged/a.md", "--target", f"docs/{name}"], proj_dir)
    assert code == 0, out
    (proj_dir / "staged/a.md").write_text("two\n")
    code, out = cli_json(["promote", "staged/a.md", "--target", f"docs/{name}"], proj_dir)
    assert code == 0, out
    assert (proj_dir / "docs" / name).read_text() == "two\n"
    (proj_dir / "staged/site").mkdir()
    (proj_dir / "staged/site/index.html").write_text("new\n")
    (proj_dir / "docs" / wide).mkdir()
    (proj_dir / "docs" / wide / "index.html").write_text("old\n")
    code, out = cli_json(["promote", "staged/site", "--target", f"docs/{wide}"], proj_dir)
    assert code == 0, out
    assert (proj_dir / "docs" / wide / "index.html").read_text() == "new\n"
    for target, file, content in (
        (f"docs/{name}", f"docs/{name}", "one\n"),
        (f"docs/{wide}", f"docs/{wide}/index.html", "old\n"),
    ):
        code, out = cli_json(["rollback", "--target", target], proj_dir)
        assert code == 0, out
        assert (proj_dir / file).read_text() == content
    assert sorted(p.name for p in (proj_dir / "docs").iterdir()) == sorted([name, wide])
    assert cli_json(["history", "verify"], proj_dir)[0] == 0


def test_a_run_that_fails_before_its_switch_names_its_run_and_evidence(
    proj_dir: Path, tmp_path: Path
) -> None:
    (proj_dir / "docs/site").mkdir()
    (proj_dir / "docs/site/index.html").write_text("live\n")
    (proj_dir / "staged/site").mkdir()
    (proj_dir / "staged/site/index.html").write_text("staged\n")
    proc, marker = start_paused(
        ["promote", "staged/site", "--target", "docs/site", "--json"],
        proj_dir,
        "promote.stage.before",
        tmp_path,
    )
    # the staged folder changes after the plan hashed it: its copy no longer matches
    (proj_dir / "staged/site/index.html").write_text("changed meanwhile\n")
    marker.unlink()
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 6, stdout + stderr
    out = json.loads(stdout)
    assert out["status"] == "FAIL" and "does not match the planned sha256" in out["message"]
    assert out["run_id"] and out["evidence_path"].endswith(out["run_id"])
    assert (proj_dir / "docs/site/index.html").read_text() == "live\n"
    code, verified = cli_json(["evidence", "verify", out["run_id"]], proj_dir)
    assert code == 0, verified
    final = json.loads((Path(out["evidence_path"]) / "final_status.json").read_text())
    assert final["status"] == "failed"
    human = run_cli(["promote", "staged/site", "--target", "docs/site"], proj_dir)
    assert human.returncode == 0, human.stderr  # the next promotion goes through
    assert (proj_dir / "docs/site/index.html").read_text() == "changed meanwhile\n"
