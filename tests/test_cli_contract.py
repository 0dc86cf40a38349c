"""The JSON output contract, --dry-run, --wait and the secret canary."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from support.tree import cli_json, run_cli, snapshot

KEYS = {
    "status",
    "action",
    "run_id",
    "staged_path",
    "target_path",
    "backup_path",
    "evidence_path",
    "message",
}


def test_promote_json_contract(proj_dir: Path) -> None:
    (proj_dir / "docs/a.md").write_text("old\n")
    (proj_dir / "staged/a.md").write_text("new\n")
    code, out = cli_json(["promote", "staged/a.md", "--target", "docs/a.md"], proj_dir)
    assert code == 0
    assert set(out) >= KEYS
    assert out["status"] == "OK" and out["action"] == "promote"
    assert out["target_path"] == str(proj_dir / "docs/a.md")
    assert out["staged_path"] == str(proj_dir / "staged/a.md")
    assert Path(out["backup_path"]).read_text() == "old\n"
    assert Path(out["evidence_path"]).is_dir()
    assert len(out["run_id"]) == 22 and out["run_id"][8] == "-" and out["run_id"][15] == "-"
    code, again = cli_json(["promote", "staged/a.md", "--target", "docs/a.md"], proj_dir)
    assert code == 0 and again["status"] == "NOOP"
    code, back = cli_json(["rollback", "--target", "docs/a.md"], proj_dir)
    assert code == 0 and set(back) >= KEYS and back["action"] == "rollback"


def test_dry_run_changes_nothing(proj_dir: Path) -> None:
    (proj_dir / "docs/a.md").write_text("line one\nold line\n")
    (proj_dir / "staged/a.md").write_text("line one\nnew line\n")
    before = snapshot(proj_dir)
    code, out = cli_json(["promote", "staged/a.md", "--target", "docs/a.md", "--dry-run"], proj_dir)
    assert code == 0 and out["dry_run"] is True
    assert "-old line" in out["diff"] and "+new line" in out["diff"]
    assert out["plan"]["before"]["kind"] == "file"
    assert snapshot(proj_dir) == before
    assert not (proj_dir / ".liftgate").exists()
    human = run_cli(["promote", "staged/a.md", "--target", "docs/a.md", "--dry-run"], proj_dir)
    assert human.returncode == 0 and "+new line" in human.stdout


def test_defaults_without_config(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("old\n")
    (tmp_path / "a.new").write_text("new\n")
    code, out = cli_json(["promote", "a.new", "--target", "a.md"], tmp_path)
    assert code == 0, out
    assert (tmp_path / ".liftgate/history.jsonl").is_file()
    assert (tmp_path / "a.md").read_text() == "new\n"


def test_lock_refuses_then_wait_succeeds(proj_dir: Path) -> None:
    (proj_dir / "docs/a.md").write_text("old\n")
    (proj_dir / "staged/a.md").write_text("new\n")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys,time\n"
            "from liftgate.engine.project import Project\n"
            "from liftgate.engine.recovery import lock_name\n"
            f"p = Project.open(cwd=__import__('pathlib').Path({str(proj_dir)!r}))\n"
            f"with p.store.lock(lock_name({str(proj_dir / 'docs/a.md')!r})):\n"
            "    print('held', flush=True)\n"
            "    time.sleep(8)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        code, out = cli_json(["promote", "staged/a.md", "--target", "docs/a.md"], proj_dir)
        assert code == 4 and "holds the lock" in out["message"]
        assert (proj_dir / "docs/a.md").read_text() == "old\n"
        started = time.monotonic()
        code, out = cli_json(
            ["promote", "staged/a.md", "--target", "docs/a.md", "--wait", "30"], proj_dir
        )
        assert code == 0 and out["status"] == "OK"
        assert time.monotonic() - started < 30
    finally:
        holder.wait(30)
        if holder.stdout is not None:
            holder.stdout.close()


def test_secret_canary_never_written(proj_dir: Path) -> None:
    canary = "CANARY-s3cr3t-7f1d"
    (proj_dir / "liftgate.toml").write_text(
        '[project]\nroots = ["."]\n[redaction]\npatterns = ["CANARY-[a-z0-9-]+"]\n'
    )
    (proj_dir / "docs/a.md").write_text("old\n")
    staged = proj_dir / f"staged/notes-password={canary}.md"
    staged.write_text("token: fine\n")
    env = {"LIFTGATE_TOKEN": canary}
    args = [
        "promote",
        str(staged.relative_to(proj_dir)),
        "--target",
        "docs/a.md",
        "--expect-prefix",
        "token",
    ]
    code, out = cli_json(args, proj_dir, env)
    assert code == 0, out
    assert canary not in str(out)
    code, out = cli_json(["promote", f"staged/api_key={canary}", "--target", "docs/b.md"], proj_dir)
    assert code != 0 and canary not in out["message"]
    assert run_cli(["rollback", "--target", "docs/a.md"], proj_dir).returncode == 0
    run_cli(["runs", "list"], proj_dir)
    for dirpath, _, files in os.walk(proj_dir / ".liftgate"):
        for name in files:
            path = Path(dirpath) / name
            assert canary not in str(path)
            assert canary.encode() not in path.read_bytes(), path
