"""History tampering (edit, deletion, reordering, truncation) and evidence verification."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from liftgate.engine.project import Project
from liftgate.files.api import promote
from support.tree import cli_json, run_cli


@pytest.fixture
def history_proj(proj_dir: Path) -> Path:
    project = Project.open(cwd=proj_dir)
    for i in range(5):
        (proj_dir / "staged/a.md").write_text(f"version {i}\n")
        assert promote(project, "staged/a.md", "docs/a.md").status == "OK"
    project.close()
    code, out = cli_json(["history", "verify"], proj_dir)
    assert code == 0 and out["count"] == 5
    return proj_dir


def _lines(proj: Path) -> list[str]:
    return (proj / ".liftgate/history.jsonl").read_text().splitlines(keepends=True)


def _write(proj: Path, lines: list[str]) -> None:
    (proj / ".liftgate/history.jsonl").write_text("".join(lines))


def _edit(lines: list[str]) -> list[str]:
    entry = json.loads(lines[2])
    entry["target"] = "/somewhere/else"
    return [*lines[:2], json.dumps(entry, sort_keys=True, separators=(",", ":")) + "\n", *lines[3:]]


def _edit_last(lines: list[str]) -> list[str]:
    entry = json.loads(lines[-1])
    entry["outcome"] = "reverted"
    return [*lines[:-1], json.dumps(entry, sort_keys=True, separators=(",", ":")) + "\n"]


TAMPER: dict[str, Callable[[list[str]], list[str]]] = {
    "edit_middle": _edit,
    "edit_last": _edit_last,
    "delete_middle": lambda lines: lines[:1] + lines[2:],
    "reorder": lambda lines: [lines[0], lines[2], lines[1], *lines[3:]],
    "truncate_last": lambda lines: lines[:-1],
    "truncate_to_empty": lambda lines: [],
    "append_forged": lambda lines: [*lines, lines[-1]],
}


@pytest.mark.parametrize("how", sorted(TAMPER))
def test_history_verify_detects_tampering(history_proj: Path, how: str) -> None:
    _write(history_proj, TAMPER[how](_lines(history_proj)))
    code, out = cli_json(["history", "verify"], history_proj)
    assert code != 0, out
    assert out["status"] == "FAIL" and out["problems"]
    # a rollback refuses to trust a damaged history
    code, out = cli_json(["rollback", "--target", "docs/a.md"], history_proj)
    assert code != 0


def test_history_lines_chain(history_proj: Path) -> None:
    import hashlib

    lines = _lines(history_proj)
    prev = "0" * 64
    for number, line in enumerate(lines, 1):
        entry = json.loads(line)
        assert entry["seq"] == number and entry["prev"] == prev
        prev = hashlib.sha256(line.rstrip("\n").encode()).hexdigest()


def test_evidence_verify_detects_change_and_missing(history_proj: Path) -> None:
    code, runs = cli_json(["runs", "list"], history_proj)
    assert code == 0 and len(runs["runs"]) == 5
    run_id = runs["runs"][0]["run_id"]
    code, out = cli_json(["evidence", "verify", run_id], history_proj)
    assert code == 0 and out["status"] == "OK"
    folder = history_proj / ".liftgate/evidence" / run_id
    assert run_cli(["evidence", "verify", str(folder)], history_proj).returncode == 0

    summary = folder / "summary.md"
    original = summary.read_bytes()
    summary.write_bytes(original + b"forged line\n")
    code, out = cli_json(["evidence", "verify", run_id], history_proj)
    assert code != 0 and "summary.md: changed" in out["message"]
    summary.write_bytes(original)

    (folder / "plan.json").unlink()
    code, out = cli_json(["evidence", "verify", run_id], history_proj)
    assert code != 0 and "plan.json: missing" in out["message"]

    other = runs["runs"][1]["run_id"]
    extra = history_proj / ".liftgate/evidence" / other / "extra.txt"
    extra.write_text("added later")
    code, out = cli_json(["evidence", "verify", other], history_proj)
    assert code != 0 and "not listed" in out["message"]

    code, out = cli_json(["evidence", "verify", "20990101-000000-abcdef"], history_proj)
    assert code == 2 and "no evidence" in out["message"]


def test_runs_show_has_journal(history_proj: Path) -> None:
    code, runs = cli_json(["runs", "list", "--target", "docs/a.md", "--limit", "2"], history_proj)
    assert code == 0 and len(runs["runs"]) == 2
    code, out = cli_json(["runs", "show", runs["runs"][0]["run_id"]], history_proj)
    assert code == 0
    names = [s["name"] for s in out["steps"] if s["state"] == "done"]
    assert names == ["stage", "backup", "commit", "verify", "cleanup", "history"]
    assert out["run"]["status"] == "ok"
    code, out = cli_json(["history", "--target", "docs/a.md"], history_proj)
    assert code == 0 and len(out["entries"]) == 5


def test_kill_while_a_run_starts_leaves_verifiable_evidence(proj_dir: Path) -> None:
    (proj_dir / "docs/a.md").write_text("old\n")
    (proj_dir / "staged/a.md").write_text("new\n")
    proc = run_cli(
        ["promote", "staged/a.md", "--target", "docs/a.md"],
        proj_dir,
        {"LIFTGATE_FAILPOINTS": "promote.start.recorded"},
    )
    assert proc.returncode == -9
    code, out = cli_json(["recover"], proj_dir)
    assert code == 0 and out["runs"][0]["result"] == "undone"
    run_id = out["runs"][0]["run_id"]
    code, ev = cli_json(["evidence", "verify", run_id], proj_dir)
    assert code == 0, ev
    plan = json.loads((proj_dir / ".liftgate/evidence" / run_id / "plan.json").read_text())
    assert plan["target"] == str(proj_dir / "docs/a.md")
    assert (proj_dir / "docs/a.md").read_text() == "old\n"
