"""Every bad input is refused with one clear sentence, a non-zero exit, and no change."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from support.tree import cli_json, run_cli, snapshot


def _state(proj: Path) -> tuple[int, int, int]:
    state = proj / ".liftgate"
    evidence = len(list((state / "evidence").iterdir())) if (state / "evidence").exists() else 0
    backups = len(list((state / "backups").iterdir())) if (state / "backups").exists() else 0
    history = state / "history.jsonl"
    lines = len(history.read_text().splitlines()) if history.exists() else 0
    return evidence, backups, lines


@pytest.fixture
def setup(proj_dir: Path, tmp_path: Path) -> Path:
    (proj_dir / "docs/README.md").write_text("# M2M v1.0\nlive\n")
    (proj_dir / "staged/README.md").write_text("# M2M v1.0\nstaged\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.md").write_text("outside\n")
    os.symlink(outside, proj_dir / "docs/escape")
    # one good promotion first, so there is state that must stay unchanged too
    code, out = cli_json(["promote", "staged/README.md", "--target", "docs/README.md"], proj_dir)
    assert code == 0 and out["status"] == "OK"
    (proj_dir / "staged/README.md").write_text("# M2M v1.0\nstaged again\n")
    return proj_dir


CASES = {
    "outside_root_relative": (
        ["promote", "staged/README.md", "--target", "../outside/x.md"],
        "outside the allowed roots",
    ),
    "absolute_elsewhere": (
        ["promote", "staged/README.md", "--target", "/etc/hostname"],
        "outside the allowed roots",
    ),
    "absolute_staged_elsewhere": (
        ["promote", "/etc/hostname", "--target", "docs/README.md"],
        "outside the allowed roots",
    ),
    "dotdot_escape": (
        ["promote", "staged/../../outside/secret.md", "--target", "docs/x.md"],
        "outside the allowed roots",
    ),
    "symlink_escape_target": (
        ["promote", "staged/README.md", "--target", "docs/escape/secret.md"],
        "outside the allowed roots",
    ),
    "symlink_escape_staged": (
        ["promote", "docs/escape/secret.md", "--target", "docs/x.md"],
        "outside the allowed roots",
    ),
    "glob_target": (["promote", "staged/README.md", "--target", "docs/*.md"], "glob characters"),
    "glob_target_question": (
        ["promote", "staged/README.md", "--target", "docs/READM?.md"],
        "glob characters",
    ),
    "missing_staged": (
        ["promote", "staged/nope.md", "--target", "docs/README.md"],
        "does not exist",
    ),
    "staged_equals_target": (
        ["promote", "docs/README.md", "--target", "docs/README.md"],
        "are the same file",
    ),
    "target_in_state_dir": (
        ["promote", "staged/README.md", "--target", ".liftgate/history.jsonl"],
        "state folder",
    ),
    "staged_in_state_dir": (
        ["promote", ".liftgate/history.jsonl", "--target", "docs/README.md"],
        "state folder",
    ),
    "failing_verification": (
        ["promote", "staged/README.md", "--target", "docs/README.md", "--expect-prefix", "# Other"],
        "fails verification",
    ),
    "missing_target_folder": (
        ["promote", "staged/README.md", "--target", "nodir/README.md"],
        "does not exist",
    ),
    "empty_target": (["promote", "staged/README.md", "--target", ""], "empty"),
    "empty_expect_prefix": (
        ["promote", "staged/README.md", "--target", "docs/README.md", "--expect-prefix", ""],
        "--expect-prefix must not be empty",
    ),
    "missing_target_option": (["promote", "staged/README.md"], "required: --target"),
    "unknown_option": (
        ["promote", "staged/README.md", "--target", "docs/README.md", "--targett", "x"],
        "unrecognized arguments: --targett",
    ),
    "target_named_like_a_secret": (
        ["promote", "staged/README.md", "--target", "docs/token=abc.md"],
        "redaction rules match",
    ),
    "rollback_named_like_a_secret": (
        ["rollback", "--target", "docs/password=x.md"],
        "redaction rules match",
    ),
    "rollback_glob": (["rollback", "--target", "docs/*"], "glob characters"),
    "rollback_outside": (["rollback", "--target", "/etc/passwd"], "outside the allowed roots"),
    "rollback_nothing": (["rollback", "--target", "staged/README.md"], "no promotion"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_refused(setup: Path, case: str) -> None:
    args, expected = CASES[case]
    tree = snapshot(setup.parent, skip=(".liftgate",))
    state = _state(setup)
    code, out = cli_json(args, setup)
    assert code != 0
    assert out["status"] == "FAIL"
    assert expected in out["message"], out["message"]
    assert "\n" not in out["message"]
    human = run_cli(args, setup)
    assert human.returncode == code
    assert "Traceback" not in human.stderr and expected in human.stderr
    assert snapshot(setup.parent, skip=(".liftgate",)) == tree
    assert _state(setup) == state
    verify = run_cli(["history", "verify"], setup)
    assert verify.returncode == 0, verify.stdout


def test_unreadable_staged_file_refused(setup: Path) -> None:
    """Root reads anything, so the CLI runs without the capabilities that bypass modes."""
    staged = setup / "staged/locked.md"
    staged.write_text("# M2M v1.0\nlocked\n")
    staged.chmod(0o000)
    tree = snapshot(setup.parent, skip=(".liftgate",))
    state = _state(setup)
    argv = [
        sys.executable,
        "-m",
        "liftgate",
        "promote",
        "staged/locked.md",
        "--target",
        "docs/README.md",
        "--json",
    ]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        assert setpriv, "setpriv (util-linux) is needed to drop root's file capabilities"
        argv = [setpriv, "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search", *argv]
    proc = subprocess.run(argv, cwd=setup, capture_output=True, text=True, check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "is not readable" in proc.stdout
    assert snapshot(setup.parent, skip=(".liftgate",)) == tree
    assert _state(setup) == state


def _refused_quickly(args: list[str], proj: Path, expected: str) -> None:
    """Refused with exit 2 and ``expected`` in the one sentence, well before the timeout
    (a fifo opened for hashing would block), and nothing changed."""
    tree = snapshot(proj.parent, skip=(".liftgate",))
    state = _state(proj)
    proc = run_cli([*args, "--json"], proj, timeout=30)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert expected in proc.stdout, proc.stdout
    assert snapshot(proj.parent, skip=(".liftgate",)) == tree
    assert _state(proj) == state


def test_fifo_target_refused(setup: Path) -> None:
    os.mkfifo(setup / "docs/pipe")
    _refused_quickly(
        ["promote", "staged/README.md", "--target", "docs/pipe"],
        setup,
        "the target docs/pipe is a fifo",
    )


def test_target_folder_holding_a_fifo_refused(setup: Path) -> None:
    (setup / "docs/site").mkdir()
    (setup / "docs/site/index.html").write_text("live\n")
    os.mkfifo(setup / "docs/site/events")
    (setup / "staged/site").mkdir()
    (setup / "staged/site/index.html").write_text("staged\n")
    _refused_quickly(
        ["promote", "staged/site", "--target", "docs/site"],
        setup,
        "docs/site/events is a fifo, not a regular file, folder or symlink",
    )
    _refused_quickly(
        ["promote", "staged/site", "--target", "docs/site", "--dry-run"], setup, "is a fifo"
    )


def test_rollback_onto_a_target_that_became_a_fifo_refused(setup: Path) -> None:
    (setup / "docs/README.md").unlink()
    os.mkfifo(setup / "docs/README.md")
    _refused_quickly(
        ["rollback", "--target", "docs/README.md", "--force"],
        setup,
        "the target docs/README.md is a fifo",
    )


def test_staged_symlink_pointing_outside_refused(setup: Path, tmp_path: Path) -> None:
    folder = setup / "staged/site"
    folder.mkdir()
    (folder / "index.html").write_text("x")
    os.symlink(tmp_path / "outside/secret.md", folder / "leak")
    code, out = cli_json(["promote", "staged/site", "--target", "site"], setup)
    assert code == 2 and "points outside the staged folder" in out["message"]
    assert not (setup / "site").exists()


def test_bad_config_is_one_sentence(proj_dir: Path) -> None:
    (proj_dir / "liftgate.toml").write_text('[project]\nroots = ["."]\nunknown = 1\n')
    code, out = cli_json(["history"], proj_dir)
    assert code == 2 and "project.unknown" in out["message"]
    (proj_dir / "liftgate.toml").write_text("[[files.verify]]\nglob = '*.md'\n")
    code, out = cli_json(["history"], proj_dir)
    assert code == 2 and "needs starts_with" in out["message"]


def test_path_matching_a_configured_redaction_pattern_is_refused(proj_dir: Path) -> None:
    # A run is recovered from its journal, which holds only redacted text: a path that a
    # [redaction] pattern rewrites would be journaled as [REDACTED], and an interrupted
    # promotion of it could be neither found nor completed. So it never starts.
    (proj_dir / "liftgate.toml").write_text(
        '[project]\nroots = ["."]\n[redaction]\npatterns = ["ACME-[0-9]+"]\n'
    )
    (proj_dir / "docs/ACME-1.md").write_text("old\n")
    (proj_dir / "staged/ACME-1.md").write_text("new\n")
    tree = snapshot(proj_dir.parent, skip=(".liftgate",))
    for extra in ([], ["--dry-run"]):
        code, out = cli_json(
            ["promote", "staged/ACME-1.md", "--target", "docs/ACME-1.md", *extra], proj_dir
        )
        assert code == 2 and out["status"] == "FAIL"
        assert "redaction rules match" in out["message"] and "ACME-1" not in out["message"]
    assert snapshot(proj_dir.parent, skip=(".liftgate",)) == tree
    assert _state(proj_dir) == (0, 0, 0)
    # a path the pattern leaves alone still promotes
    (proj_dir / "staged/plain.md").write_text("new\n")
    code, out = cli_json(["promote", "staged/plain.md", "--target", "docs/plain.md"], proj_dir)
    assert code == 0 and out["status"] == "OK"
