"""Crash safety of ``liftgate promote`` and ``liftgate rollback``, with real processes.

Every test is its own project in ``tmp_path`` and drives the real CLI
(``python -m liftgate ...``) in subprocesses:

* the failpoint matrix: every failpoint of promote and rollback, for a file and a folder,
  makes the process SIGKILL itself; ``liftgate recover`` must then leave the target exactly
  as it was (failpoints before the switch) or exactly as promised (at or after it), with
  a history that verifies, no temp files, a finished run, sealed evidence, and a target
  that later operations still work on;
* random moments: large inputs (a 64 MiB file, a folder of ~2,000 files) killed with
  ``proc.kill()`` after a seeded random delay, recovered and checked the same way;
* locks: a killed process never leaves its target locked; the next promote recovers the
  interrupted run itself.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pytest

CONFIG = '[project]\nroots = ["."]\n'
KILLED = -signal.SIGKILL
TIMEOUT = 180.0
MIB = 1 << 20

# The failpoints of one action, in the order a run reaches them.
POINTS = (
    "stage.before",
    "stage.after",
    "backup.before",
    "backup.after",
    "commit.before",
    "commit.switched",
    "commit.after",
    "verify.before",
    "verify.after",
    "cleanup.before",
    "cleanup.after",
    "history.before",
    "history.after",
    "finish.sealed",
)
SWITCH = POINTS.index("commit.switched")

Kind = Literal["file", "dir"]
Outcome = Literal["old", "new"]

# ---------------------------------------------------------------------------------------
# running the CLI


@dataclass(frozen=True)
class Done:
    """One finished ``liftgate`` process."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def payload(self) -> dict[str, Any]:
        try:
            data = json.loads(self.stdout)
        except ValueError:
            pytest.fail(f"not one JSON object on stdout:\n{self}")
        assert isinstance(data, dict), self
        return data

    def __str__(self) -> str:
        return (
            f"liftgate {' '.join(self.args)} -> {self.returncode}\n"
            f"stdout: {self.stdout.strip()}\nstderr: {self.stderr.strip()}"
        )


def _env(failpoints: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("LIFTGATE_FAILPOINTS", "LIFTGATE_DEBUG")}
    if failpoints:
        env["LIFTGATE_FAILPOINTS"] = failpoints
    return env


def spawn(project: Path, args: Sequence[str], failpoints: str | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "liftgate", *args],
        cwd=project,
        env=_env(failpoints),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def collect(proc: subprocess.Popen[str], args: Sequence[str]) -> Done:
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"liftgate {' '.join(args)} did not finish in {TIMEOUT}s:\n{out}\n{err}")
    return Done(tuple(args), proc.returncode, out, err)


def lg(project: Path, *args: str, failpoints: str | None = None) -> Done:
    return collect(spawn(project, args, failpoints), args)


def lg_many(project: Path, *commands: Sequence[str]) -> list[Done]:
    """Run read-only commands side by side (the machine has cores to spare for them)."""
    procs = [(spawn(project, cmd), cmd) for cmd in commands]
    return [collect(proc, cmd) for proc, cmd in procs]


def ok(done: Done, status: str = "OK") -> dict[str, Any]:
    """Exit 0 and the JSON status ``status``; returns the payload."""
    assert done.returncode == 0, done
    payload = done.payload()
    assert payload["status"] == status, done
    return payload


# ---------------------------------------------------------------------------------------
# files and folders, compared byte for byte

Entry = tuple[str, bytes]
Snapshot = dict[str, Entry]


def snapshot(path: Path) -> Snapshot:
    """Everything at ``path``: relative path -> (kind, bytes or link target)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return {".": ("absent", b"")}
    if stat.S_ISLNK(st.st_mode):
        return {".": ("link", os.fsencode(os.readlink(path)))}
    if not stat.S_ISDIR(st.st_mode):
        return {".": ("file", path.read_bytes())}
    snap: Snapshot = {".": ("dir", b"")}
    for folder, dirs, files in os.walk(path):
        for name in [*dirs, *files]:
            full = Path(folder, name)
            rel = full.relative_to(path).as_posix()
            mode = os.lstat(full).st_mode
            if stat.S_ISLNK(mode):
                snap[rel] = ("link", os.fsencode(os.readlink(full)))
            elif stat.S_ISDIR(mode):
                snap[rel] = ("dir", b"")
            else:
                snap[rel] = ("file", full.read_bytes())
    return snap


def _difference(found: Snapshot, wanted: Snapshot) -> str:
    missing = sorted(wanted.keys() - found.keys())
    extra = sorted(found.keys() - wanted.keys())
    changed = sorted(k for k in wanted.keys() & found.keys() if wanted[k] != found[k])
    return f"missing {missing[:4]} ({len(missing)}), extra {extra[:4]} ({len(extra)}), changed {changed[:4]} ({len(changed)})"


def classify(target: Path, old: Snapshot, new: Snapshot) -> str:
    """``"old"`` or ``"new"`` when the target is exactly one of them, else a description."""
    found = snapshot(target)
    if found == old:
        return "old"
    if found == new:
        return "new"
    return f"NEITHER old ({_difference(found, old)}) NOR new ({_difference(found, new)})"


def holds(target: Path, wanted: Snapshot) -> str:
    found = snapshot(target)
    return "exactly" if found == wanted else _difference(found, wanted)


def write_tree(root: Path, files: Mapping[str, bytes]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def write_random_file(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        for _ in range(size // MIB):
            fh.write(os.urandom(MIB))


def leftovers(target: Path) -> list[str]:
    """Temp files a run left beside its target."""
    prefix = f".{target.name}.liftgate-"
    return sorted(p.name for p in target.parent.iterdir() if p.name.startswith(prefix))


def make_project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    (project / "liftgate.toml").write_text(CONFIG, encoding="utf-8")
    return project


# small contents for the failpoint matrix: A (the original), B (staged), C (a later promote)
FILE_A = b"# app.conf\nlisten = 8080\nmode = original\n" + bytes(range(256))
FILE_B = b"# app.conf\nlisten = 9090\nmode = promoted\nworkers = 4\n" + bytes(range(255, -1, -1))
FILE_C = b"# app.conf\nlisten = 7070\nmode = third\n"
TREE_A = {
    "index.html": b"<h1>version A</h1>\n",
    "README.md": b"only in A\n",
    "css/site.css": b"body { color: black; }\n",
    "css/theme/dark.css": b"body { background: #000; }\n",
    "data/records.json": b'{"records": [1, 2, 3]}\n',
}
TREE_B = {
    "index.html": b"<h1>version B</h1>\n<p>new</p>\n",
    "css/site.css": b"body { color: black; }\n",
    "css/theme/dark.css": b"body { background: #111; }\n",
    "data/records.json": b'{"records": [1, 2, 3, 4]}\n',
    "js/app.js": b"console.log('B');\n",
    "js/vendor/lib.js": b"/* lib */\n" * 50,
}
TREE_C = {"index.html": b"<h1>version C</h1>\n", "only-c/notes.txt": b"C\n"}


@dataclass(frozen=True)
class Layout:
    """A target in ``live/`` and staged versions B and C of it in ``staged/``."""

    project: Path
    kind: Kind

    @property
    def name(self) -> str:
        return "app.conf" if self.kind == "file" else "site"

    @property
    def target(self) -> Path:
        return self.project / "live" / self.name

    @property
    def target_arg(self) -> str:
        return f"live/{self.name}"

    def staged_arg(self, version: str) -> str:
        return f"staged/{version}/{self.name}"

    def write(self, path: Path, version: str) -> None:
        if self.kind == "file":
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes({"A": FILE_A, "B": FILE_B, "C": FILE_C}[version])
        else:
            write_tree(path, {"A": TREE_A, "B": TREE_B, "C": TREE_C}[version])

    def create(self) -> dict[str, Snapshot]:
        """Target holds A; B and C are staged. Returns the snapshot of each version."""
        self.write(self.target, "A")
        for version in ("B", "C"):
            self.write(self.project / self.staged_arg(version), version)
        snaps = {v: snapshot(self.project / self.staged_arg(v)) for v in ("B", "C")}
        snaps["A"] = snapshot(self.target)
        assert snaps["A"] != snaps["B"] != snaps["C"] != snaps["A"]
        return snaps

    def promote(self, version: str, failpoints: str | None = None) -> Done:
        return lg(
            self.project,
            "promote",
            self.staged_arg(version),
            "--target",
            self.target_arg,
            "--json",
            failpoints=failpoints,
        )

    def rollback(self, failpoints: str | None = None) -> Done:
        return lg(self.project, "rollback", "--target", self.target_arg, "--json", failpoints=failpoints)


def run_ids(project: Path) -> list[dict[str, Any]]:
    runs = ok(lg(project, "runs", "list", "--json"))["runs"]
    assert isinstance(runs, list)
    return runs


# ---------------------------------------------------------------------------------------
# 1. every failpoint


def _cases() -> Iterator[Any]:
    for action in ("promote", "rollback"):
        for kind in ("file", "dir"):
            for point in POINTS:
                yield pytest.param(action, kind, point, id=f"{kind}-{action}.{point}")


@pytest.mark.parametrize(("action", "kind", "point"), list(_cases()))
def test_failpoint_then_recover(tmp_path: Path, action: str, kind: Kind, point: str) -> None:
    layout = Layout(make_project(tmp_path), kind)
    project, target = layout.project, layout.target
    snaps = layout.create()
    if action == "promote":
        old, new = snaps["A"], snaps["B"]
        crashed = layout.promote("B", failpoints=f"promote.{point}")
    else:
        ok(layout.promote("B"))  # something to roll back
        assert holds(target, snaps["B"]) == "exactly"
        old, new = snaps["B"], snaps["A"]
        crashed = layout.rollback(failpoints=f"rollback.{point}")
    committed = POINTS.index(point) >= SWITCH
    expected: Outcome = "new" if committed else "old"

    assert crashed.returncode == KILLED, crashed
    assert crashed.stdout == "", crashed  # it died before it could report anything

    recovered = ok(lg(project, "recover", "--json"))
    assert len(recovered["runs"]) == 1, recovered
    handled = recovered["runs"][0]
    assert handled["result"] == ("completed" if committed else "undone"), recovered
    assert handled["kind"] == f"files.{action}", recovered

    assert classify(target, old, new) == expected
    assert leftovers(target) == []

    verified, listed = lg_many(
        project, ["history", "verify", "--json"], ["runs", "list", "--json"]
    )
    ok(verified)
    runs = ok(listed)["runs"]
    assert [r["status"] for r in runs if r["status"] == "running"] == [], runs
    newest = runs[0]  # newest first
    run_id = newest["run_id"]
    assert run_id == handled["run_id"], (runs, recovered)
    assert newest["action"] == action

    shown, evidence = lg_many(
        project, ["runs", "show", run_id, "--json"], ["evidence", "verify", run_id, "--json"]
    )
    run = ok(shown)["run"]
    assert run["status"] == ("ok" if committed else "failed"), shown
    steps = ok(shown)["steps"]
    last = {s["name"]: s["state"] for s in steps}
    if committed:
        assert last["commit"] in ("started", "done") and last["history"] == "done", steps
    else:
        assert "revert" not in last and last.get("commit") != "done", steps
        assert not (project / ".liftgate" / "backups" / run_id).exists()
    ok(evidence)

    # later operations still work on this target
    if action == "promote" and committed:
        ok(layout.rollback())
        assert holds(target, snaps["A"]) == "exactly"
    elif action == "promote":
        ok(layout.promote("B"))
        assert holds(target, snaps["B"]) == "exactly"
        ok(layout.rollback())
        assert holds(target, snaps["A"]) == "exactly"
    elif committed:  # the rollback was completed: A is back
        ok(layout.promote("C"))
        assert holds(target, snaps["C"]) == "exactly"
        ok(layout.rollback())
        assert holds(target, snaps["A"]) == "exactly"
    else:  # the rollback was undone: B is still in force
        ok(layout.rollback())
        assert holds(target, snaps["A"]) == "exactly"
    assert leftovers(target) == []
    ok(lg(project, "history", "verify", "--json"))
