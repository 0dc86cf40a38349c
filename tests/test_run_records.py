"""What a run writes about itself, made cheaper without losing anything: evidence files written
in place and rebuilt when a crash cut them short, the redactor's memo, the history head an
append remembers."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from liftgate.engine.project import Project
from liftgate.engine.redaction import REDACTED, Redactor
from liftgate.errors import IntegrityError
from liftgate.files.api import promote
from support.tree import cli_json, run_cli


def test_resume_rebuilds_start_files_a_crash_left_incomplete(proj_dir: Path) -> None:
    (proj_dir / "docs/a.md").write_text("old\n")
    (proj_dir / "staged/a.md").write_text("new\n")
    proc = run_cli(
        ["promote", "staged/a.md", "--target", "docs/a.md"],
        proj_dir,
        {"LIFTGATE_FAILPOINTS": "promote.stage.before"},
    )
    assert proc.returncode == -9
    (folder,) = (proj_dir / ".liftgate/evidence").iterdir()
    # as if the process had died inside the writes of its first evidence files
    (folder / "run_id.txt").write_bytes(b"")
    for name in ("inputs.json", "plan.json", "guardrails.json"):
        data = (folder / name).read_bytes()
        (folder / name).write_bytes(data[: len(data) // 2])
    code, out = cli_json(["recover"], proj_dir)
    assert code == 0 and out["runs"][0]["result"] == "undone"
    code, ev = cli_json(["evidence", "verify", folder.name], proj_dir)
    assert code == 0, ev
    assert (folder / "run_id.txt").read_text() == folder.name + "\n"
    for name in ("inputs.json", "plan.json", "guardrails.json"):
        json.loads((folder / name).read_text())
    plan = json.loads((folder / "plan.json").read_text())
    assert plan["target"] == str(proj_dir / "docs/a.md")
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]
    assert (proj_dir / "docs/a.md").read_text() == "old\n"


def test_evidence_files_are_written_whole_and_sealed(project: Project, proj_dir: Path) -> None:
    (proj_dir / "staged/a.md").write_text("one\n")
    result = promote(project, "staged/a.md", "docs/a.md")
    assert result.status == "OK" and result.evidence_path
    folder = Path(result.evidence_path)
    names = sorted(p.name for p in folder.iterdir())
    assert names == [
        "MANIFEST.sha256",
        "final_status.json",
        "guardrails.json",
        "inputs.json",
        "plan.json",
        "run_id.txt",
        "summary.md",
    ]
    code, ev = cli_json(["evidence", "verify", folder.name], proj_dir)
    assert code == 0, ev
    journal = project.store.steps(folder.name)
    assert [(s.name, s.state) for s in journal] == [
        (name, state)
        for name in ("stage", "backup", "commit", "verify", "cleanup", "history")
        for state in ("started", "done")
    ]
    assert [s.seq for s in journal] == list(range(1, 13))


def test_redactor_memo_forgets_when_a_value_is_registered() -> None:
    redactor = Redactor()
    assert redactor.text("connect with xyzzy-42") == "connect with xyzzy-42"
    assert redactor.data({"note": "xyzzy-42", "xyzzy-42": 1}) == {"note": "xyzzy-42", "xyzzy-42": 1}
    redactor.add_value("xyzzy-42")
    assert redactor.text("connect with xyzzy-42") == f"connect with {REDACTED}"
    assert redactor.data({"note": "xyzzy-42", "xyzzy-42": 1}) == {"note": REDACTED, REDACTED: 1}
    assert redactor.data({"password": 0, "token": "", "passed": True}) == {
        "password": REDACTED,
        "token": "",
        "passed": True,
    }


def test_history_append_notices_a_change_since_its_own_last_line(
    project: Project, proj_dir: Path
) -> None:
    for i in range(2):
        (proj_dir / "staged/a.md").write_text(f"version {i}\n")
        assert promote(project, "staged/a.md", "docs/a.md").status == "OK"
    history = proj_dir / ".liftgate/history.jsonl"
    # another writer (a second Project on the same state) appends: the first one chains on
    other = Project.open(cwd=proj_dir)
    try:
        other.history.append({"action": "note", "run_id": "x"})
    finally:
        other.close()
    (proj_dir / "staged/a.md").write_text("version 2\n")
    assert promote(project, "staged/a.md", "docs/a.md").status == "OK"
    assert project.history.verify().ok
    # an edit of the last line that keeps its length is still caught by the next append
    lines = history.read_bytes().splitlines(keepends=True)
    edited = lines[-1].replace(b'"outcome":"ok"', b'"outcome":"OK"')
    assert edited != lines[-1] and len(edited) == len(lines[-1])
    stat = history.stat()
    history.write_bytes(b"".join([*lines[:-1], edited]))
    os.utime(history, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    with pytest.raises(IntegrityError):
        project.history.append({"action": "note", "run_id": "y"})
