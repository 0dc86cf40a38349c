"""--dry-run of promote and rollback: the diff and, for folders, every entry that changes.

Each dry run must leave the tree and liftgate's state exactly as they were."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from support.tree import cli_json, run_cli, snapshot


def _site(root: Path) -> Path:
    site = root / "staged/site"
    (site / "sub").mkdir(parents=True)
    (site / "index.html").write_text("<h1>one</h1>\n")
    (site / "sub/keep.txt").write_text("kept\n")
    (site / "sub/old.txt").write_text("removed later\n")
    (site / "run.sh").write_text("echo hi\n")
    (site / "blob.bin").write_bytes(bytes(range(256)) * 4)
    (site / "kind").write_text("a file that becomes a folder\n")
    os.symlink("index.html", site / "alias")
    return site


def _dry(args: list[str], root: Path) -> dict[str, Any]:
    before = snapshot(root)
    code, out = cli_json([*args, "--dry-run"], root)
    assert code == 0, out
    assert out["status"] == "OK" and out["dry_run"] is True
    assert snapshot(root) == before, "a dry run changed the tree"
    return out


def _entries(out: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {e["path"]: (e["change"], e["kind"]) for e in out["changes"]["entries"]}


def test_first_folder_promotion_lists_every_entry_as_added(proj_dir: Path) -> None:
    _site(proj_dir)
    out = _dry(["promote", "staged/site", "--target", "docs/site"], proj_dir)
    assert not (proj_dir / ".liftgate").exists()
    entries = _entries(out)
    assert entries == {
        "alias": ("added", "symlink"),
        "blob.bin": ("added", "file"),
        "index.html": ("added", "file"),
        "kind": ("added", "file"),
        "run.sh": ("added", "file"),
        "sub": ("added", "dir"),
        "sub/keep.txt": ("added", "file"),
        "sub/old.txt": ("added", "file"),
    }
    assert out["changes"]["counts"] == {"added": 8, "removed": 0, "changed": 0}
    assert out["changes"]["more"] == 0
    diff = out["diff"]
    assert "+++ b/docs/site/index.html\n" in diff and "+<h1>one</h1>\n" in diff
    assert "Binary files a/docs/site/blob.bin and b/docs/site/blob.bin differ" in diff


def test_folder_dry_run_shows_what_the_switch_would_change(proj_dir: Path) -> None:
    site = _site(proj_dir)
    code, out = cli_json(["promote", "staged/site", "--target", "docs/site"], proj_dir)
    assert code == 0, out
    (site / "index.html").write_text("<h1>two</h1>\n")
    (site / "sub/old.txt").unlink()
    (site / "sub/new.txt").write_text("added now\n")
    (site / "run.sh").chmod(0o755)
    (site / "blob.bin").write_bytes(bytes(range(255, -1, -1)) * 4)
    (site / "kind").unlink()
    (site / "kind").mkdir()
    (site / "kind/inner.txt").write_text("inside\n")
    (site / "alias").unlink()
    os.symlink("sub", site / "alias")

    out = _dry(["promote", "staged/site", "--target", "docs/site"], proj_dir)
    assert _entries(out) == {
        "alias": ("changed", "symlink"),
        "blob.bin": ("changed", "file"),
        "index.html": ("changed", "file"),
        "kind": ("changed", "dir"),
        "kind/inner.txt": ("added", "file"),
        "run.sh": ("changed", "file"),
        "sub/new.txt": ("added", "file"),
        "sub/old.txt": ("removed", "file"),
    }
    assert out["changes"]["counts"] == {"added": 2, "removed": 1, "changed": 5}
    diff = out["diff"]
    assert "-<h1>one</h1>\n+<h1>two</h1>\n" in diff
    assert "--- a/docs/site/sub/old.txt" in diff and "-removed later\n" in diff
    assert "+added now\n" in diff and "+inside\n" in diff
    assert "Executable bit of docs/site/run.sh: no -> yes" in diff
    assert "Binary files a/docs/site/blob.bin" in diff
    assert "keep.txt" not in diff  # unchanged entries are neither listed nor diffed

    human = run_cli(["promote", "staged/site", "--target", "docs/site", "--dry-run"], proj_dir)
    assert human.returncode == 0, human.stderr
    assert "changes: 2 added, 1 removed, 5 changed" in human.stdout
    assert "    removed  sub/old.txt\n" in human.stdout
    assert "    changed  kind/\n" in human.stdout
    assert "+<h1>two</h1>" in human.stdout


def test_rollback_dry_run_shows_the_way_back(proj_dir: Path) -> None:
    (proj_dir / "staged/a.md").write_text("first\n")
    assert cli_json(["promote", "staged/a.md", "--target", "docs/a.md"], proj_dir)[0] == 0
    (proj_dir / "staged/a.md").write_text("second\n")
    assert cli_json(["promote", "staged/a.md", "--target", "docs/a.md"], proj_dir)[0] == 0

    out = _dry(["rollback", "--target", "docs/a.md"], proj_dir)
    assert "-second\n+first\n" in out["diff"] and out["changes"] is None
    assert cli_json(["rollback", "--target", "docs/a.md"], proj_dir)[0] == 0
    # the next rollback undoes the promotion that created the file: it would remove it
    out = _dry(["rollback", "--target", "docs/a.md"], proj_dir)
    assert "--- a/docs/a.md\n+++ b/docs/a.md\n@@ -1 +0,0 @@\n-first\n" in out["diff"]


def test_rollback_dry_run_of_a_folder_lists_the_entries_it_restores(proj_dir: Path) -> None:
    site = _site(proj_dir)
    assert cli_json(["promote", "staged/site", "--target", "docs/site"], proj_dir)[0] == 0
    (site / "sub/old.txt").unlink()
    assert cli_json(["promote", "staged/site", "--target", "docs/site"], proj_dir)[0] == 0
    out = _dry(["rollback", "--target", "docs/site"], proj_dir)
    assert _entries(out) == {"sub/old.txt": ("added", "file")}
    assert "+removed later\n" in out["diff"]


def test_a_large_folder_lists_the_first_entries_and_counts_the_rest(proj_dir: Path) -> None:
    many = proj_dir / "staged/many"
    many.mkdir()
    for i in range(520):
        (many / f"f{i:04d}.txt").write_text(f"{i}\n")
    out = _dry(["promote", "staged/many", "--target", "docs/many"], proj_dir)
    changes = out["changes"]
    assert changes["counts"]["added"] == 520
    assert len(changes["entries"]) == 500 and changes["more"] == 20
    assert changes["entries"][0]["path"] == "f0000.txt"
    human = run_cli(["promote", "staged/many", "--target", "docs/many", "--dry-run"], proj_dir)
    assert "... and 470 more (--json lists 500)" in human.stdout
    # 4 lines per file: 500 files fill the 2,000 lines; the 501st is cut, 19 are not diffed
    assert out["diff"].endswith(
        "... (4 more diff lines and the diffs of 19 more files not shown)\n"
    )
    assert out["diff"].count("+++ ") == 500
