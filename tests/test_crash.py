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
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
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
    env = {
        k: v for k, v in os.environ.items() if k not in ("LIFTGATE_FAILPOINTS", "LIFTGATE_DEBUG")
    }
    if failpoints:
        env["LIFTGATE_FAILPOINTS"] = failpoints
    return env


def spawn(
    project: Path, args: Sequence[str], failpoints: str | None = None
) -> subprocess.Popen[str]:
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
    return (
        f"missing {missing[:4]} ({len(missing)}), extra {extra[:4]} ({len(extra)}), "
        f"changed {changed[:4]} ({len(changed)})"
    )


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


def make_project(tmp_path: Path, config: str = CONFIG) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    (project / "liftgate.toml").write_text(config, encoding="utf-8")
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
        return lg(
            self.project, "rollback", "--target", self.target_arg, "--json", failpoints=failpoints
        )


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


def failpoint_case(tmp: Path, action: str, kind: Kind, point: str, config: str = CONFIG) -> None:
    """Crash ``action`` of a ``kind`` target at ``point``, recover, check, operate again."""
    layout = Layout(make_project(tmp, config), kind)
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

    verified, listed = lg_many(project, ["history", "verify", "--json"], ["runs", "list", "--json"])
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
    elif committed:  # the rollback was completed: A is back, and can be replaced
        ok(layout.promote("C"))
        assert holds(target, snaps["C"]) == "exactly"
    else:  # the rollback was undone: B is still in force
        ok(layout.rollback())
        assert holds(target, snaps["A"]) == "exactly"
    assert leftovers(target) == []


Case = tuple[str, str, str]


@pytest.fixture(scope="module")
def failpoint_matrix(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> dict[Case, BaseException | None]:
    """Run every selected failpoint case, a few at a time, each in its own project.

    The cases are independent and each one is a chain of short CLI processes that mostly
    wait on the interpreter starting; running three chains side by side keeps both cores
    busy. Each test below then reports its own case (re-raising its failure).
    """
    cases: dict[Case, Path] = {}
    for item in request.session.items:
        if (
            isinstance(item, pytest.Function)
            and item.path == Path(__file__)
            and item.originalname == "test_failpoint_then_recover"
        ):
            params = item.callspec.params
            case = (str(params["action"]), str(params["kind"]), str(params["point"]))
            cases[case] = tmp_path_factory.mktemp(f"{case[1]}-{case[0]}.{case[2]}")

    def run(case: Case, tmp: Path) -> BaseException | None:
        action, kind, point = case
        try:
            failpoint_case(tmp, action, "file" if kind == "file" else "dir", point)
        except BaseException as exc:  # a failed assert or pytest.fail: reported by its test
            return exc
        shutil.rmtree(tmp, ignore_errors=True)
        return None

    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {case: pool.submit(run, case, tmp) for case, tmp in cases.items()}
        return {case: future.result() for case, future in futures.items()}


@pytest.mark.parametrize(("action", "kind", "point"), list(_cases()))
def test_failpoint_then_recover(
    failpoint_matrix: dict[Case, BaseException | None], action: str, kind: Kind, point: str
) -> None:
    error = failpoint_matrix[(action, kind, point)]
    if error is not None:
        raise error


FILESYSTEM_MODE = CONFIG + '\n[durability]\nflush = "filesystem"\n'


@pytest.mark.parametrize(
    ("action", "kind", "point"),
    [
        ("promote", "file", "commit.before"),
        ("promote", "file", "commit.switched"),
        ("promote", "dir", "history.before"),
        ("rollback", "file", "commit.switched"),
        ("rollback", "dir", "commit.before"),
    ],
)
def test_failpoint_then_recover_with_filesystem_flushes(
    tmp_path: Path, action: str, kind: Kind, point: str
) -> None:
    """The same crash and recovery with ``[durability] flush = "filesystem"`` (one syncfs
    per flush point, the SQLite store leaving its log to it; the matrix above runs the
    default per-file mode): around the switch, and before the history line."""
    failpoint_case(tmp_path, action, kind, point, FILESYSTEM_MODE)


# ---------------------------------------------------------------------------------------
# 2. random moments on large inputs


@dataclass
class Tally:
    """What the random kills of one command produced."""

    name: str
    killed: Counter[str] = field(default_factory=Counter)  # target afterwards: old / new
    recovered: Counter[str] = field(default_factory=Counter)  # recover: undone / completed / none
    finished: int = 0  # the process had already exited when the kill came
    log: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return (
            f"{self.name}: killed -> old {self.killed['old']}, new {self.killed['new']}; "
            f"recover undone {self.recovered['undone']}, completed {self.recovered['completed']}, "
            f"nothing to do {self.recovered['none']}; finished before the kill {self.finished}\n  "
            + "\n  ".join(self.log)
        )


def kill_after(
    project: Path, args: Sequence[str], delay: float, switch: Path | None = None
) -> Done:
    """Start ``liftgate args`` and SIGKILL it ``delay`` seconds after its start or, with
    ``switch``, ``delay`` seconds after that path's inode was seen to change (the commit's
    rename or exchange happened)."""
    started = time.monotonic()
    proc = spawn(project, args)
    if switch is not None:
        before = _inode(switch)
        while proc.poll() is None and _inode(switch) == before:
            time.sleep(0.0005)
        started = time.monotonic()
    time.sleep(max(0.0, delay - (time.monotonic() - started)))
    proc.kill()
    return collect(proc, args)


def settle(
    project: Path, target: Path, old: Snapshot, new: Snapshot, done: Done, tally: Tally, when: str
) -> Outcome:
    """After a kill: recover, then check the target, the temp files and the history."""
    killed = done.returncode == KILLED
    if not killed:
        ok(done)  # the command had already finished
        tally.finished += 1
    recovered = lg(project, "recover", "--json")
    assert recovered.returncode == 0, recovered
    payload = recovered.payload()
    results = [r["result"] for r in payload["runs"]]
    assert results in ([], ["undone"], ["completed"]), recovered
    assert payload["status"] == ("OK" if results else "NOOP"), recovered
    outcome = classify(target, old, new)
    assert outcome in ("old", "new"), f"after a kill at {when}: {outcome}"
    if results:
        assert outcome == {"undone": "old", "completed": "new"}[results[0]], (outcome, recovered)
    assert leftovers(target) == [], f"after a kill at {when}"
    ok(lg(project, "history", "verify", "--json"))
    how = "killed" if killed else "finished"
    tally.log.append(f"{when:>22} {how:8} recover: {results or ['none']} -> {outcome}")
    if killed:
        tally.killed[outcome] += 1
        tally.recovered[results[0] if results else "none"] += 1
    return "new" if outcome == "new" else "old"


@dataclass(frozen=True)
class Timing:
    """An uncrashed run, timed from its start: when the target switched, when it exited."""

    switch: float
    total: float

    def __str__(self) -> str:
        return f"switch at {self.switch:.3f}s, exit at {self.total:.3f}s"


def stratified(rng: random.Random, duration: float, n: int) -> list[float]:
    """``n`` random delays in [0, duration): one in each n-th of it."""
    return [duration * (i + rng.random()) / n for i in range(n)]


Moment = tuple[float, bool]  # a delay, and whether it counts from the observed switch


def kill_loop(
    rng: random.Random,
    timing: Timing,
    counts: tuple[int, int],
    tally: Tally,
    once: Callable[[Moment], Outcome],
) -> None:
    """Kill at random moments: ``counts[0]`` delays spread over the whole calibrated run, and
    ``counts[1]`` just before its end: a random part of the calibrated time between the
    switch and the exit, counted from the moment the switch is seen. Then, while one outcome
    is still missing, aim for it."""
    spread, near_end = counts
    moments = [(d, False) for d in stratified(rng, timing.total, spread)]
    tail = max(timing.total - timing.switch, 0.01)
    moments += [(tail * rng.random() ** 2, True) for _ in range(near_end)]  # mostly soon
    rng.shuffle(moments)
    for attempt in range(len(moments) + 8):
        if attempt < len(moments):
            moment = moments[attempt]
        elif tally.killed["old"] and tally.killed["new"]:
            break
        elif not tally.killed["new"]:  # sooner and sooner after the switch
            moment = (rng.uniform(0.0, tail / (attempt - len(moments) + 2)), True)
        else:  # earlier and earlier
            moment = (rng.uniform(0.0, 0.3 * timing.total / (attempt - len(moments) + 1)), False)
        once(moment)
    assert tally.killed["old"] >= 1 and tally.killed["new"] >= 1, str(tally)


def _inode(path: Path) -> int:
    try:
        return os.stat(path).st_ino
    except FileNotFoundError:
        return -1


@dataclass(frozen=True)
class Versions:
    """A target in ``live/`` that starts as version A; versions A and B staged in ``staged/``."""

    project: Path
    name: str
    snaps: dict[str, Snapshot]

    @property
    def target(self) -> Path:
        return self.project / "live" / self.name

    def promote_args(self, version: str) -> list[str]:
        return [
            "promote",
            f"staged/{version}/{self.name}",
            "--target",
            f"live/{self.name}",
            "--json",
        ]

    def rollback_args(self) -> list[str]:
        return ["rollback", "--target", f"live/{self.name}", "--json"]

    def run(self, args: Sequence[str], version: str) -> Timing:
        """Run ``args`` uncrashed, timing it and the moment the target switched (its inode
        changes: rename or exchange); check the target then holds ``version``."""
        before = _inode(self.target)
        started = time.monotonic()
        proc = spawn(self.project, args)
        switch = None
        while proc.poll() is None:
            if switch is None and _inode(self.target) != before:
                switch = time.monotonic() - started
            time.sleep(0.001)
        total = time.monotonic() - started
        ok(collect(proc, args))
        assert holds(self.target, self.snaps[version]) == "exactly", (args, version)
        return Timing(total if switch is None else switch, total)


def _at(v: Versions, moment: Moment) -> tuple[float, Path | None]:
    return moment[0], (v.target if moment[1] else None)


def _describe(moment: Moment) -> str:
    return f"switch + {moment[0]:.3f}s" if moment[1] else f"{moment[0]:.3f}s"


def _other(version: str) -> str:
    return "B" if version == "A" else "A"


def random_kills(
    v: Versions, seed: int, promotes: tuple[int, int], rollbacks: tuple[int, int]
) -> tuple[Tally, Tally]:
    """Kill promotions, then rollbacks, of ``v``'s target at random moments."""
    rng = random.Random(seed)
    # calibrate, timed like the runs that will be killed: one promotion and its rollback
    promote_timing = v.run(v.promote_args("B"), "B")
    rollback_timing = v.run(v.rollback_args(), "A")

    promoted = Tally(f"promote {v.name} (uncrashed: {promote_timing})")
    current = "A"

    def promote_once(moment: Moment) -> Outcome:
        nonlocal current
        other = _other(current)
        done = kill_after(v.project, v.promote_args(other), *_at(v, moment))
        when = _describe(moment)
        outcome = settle(
            v.project, v.target, v.snaps[current], v.snaps[other], done, promoted, when
        )
        if outcome == "new":  # a later rollback puts the old content back
            v.run(v.rollback_args(), current)
        else:  # a later promotion works
            v.run(v.promote_args(other), other)
            current = other
        return outcome

    kill_loop(rng, promote_timing, promotes, promoted, promote_once)

    rolled = Tally(f"rollback {v.name} (uncrashed: {rollback_timing})")
    under, top = current, _other(current)
    v.run(v.promote_args(top), top)  # a promotion in force, to roll back

    def rollback_once(moment: Moment) -> Outcome:
        nonlocal under, top
        done = kill_after(v.project, v.rollback_args(), *_at(v, moment))
        when = _describe(moment)
        outcome = settle(v.project, v.target, v.snaps[top], v.snaps[under], done, rolled, when)
        if outcome == "new":  # rolled back: promoting again works
            v.run(v.promote_args(top), top)
        else:  # not rolled back: promoting on top of it works
            v.run(v.promote_args(under), under)
            under, top = top, under
        return outcome

    kill_loop(rng, rollback_timing, rollbacks, rolled, rollback_once)
    v.run(v.rollback_args(), under)  # and a last rollback still works
    runs = ok(lg(v.project, "runs", "list", "--limit", "1000", "--json"))["runs"]
    statuses = Counter(r["status"] for r in runs)
    assert statuses["running"] == 0, statuses
    return promoted, rolled


@pytest.mark.slow
def test_random_kills_large_file(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    for version in ("A", "B"):
        write_random_file(project / "staged" / version / "blob.bin", 64 * MIB)
    (project / "live").mkdir()
    shutil.copyfile(project / "staged/A/blob.bin", project / "live/blob.bin")
    snaps = {ver: snapshot(project / "staged" / ver / "blob.bin") for ver in ("A", "B")}
    promoted, rolled = random_kills(Versions(project, "blob.bin", snaps), 20240501, (9, 3), (2, 1))
    print(f"\n{promoted}\n{rolled}")
    shutil.rmtree(tmp_path, ignore_errors=True)  # about 2 GiB of backups


def folder_versions(seed: int) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """~2,000 small files in nested folders plus four 1 MiB files; B changes, drops, adds."""
    rng = random.Random(seed)
    a: dict[str, bytes] = {}
    for i in range(2000):
        nested = "deep/er/" if i % 7 == 0 else ("sub/" if i % 3 == 0 else "")
        a[f"d{i % 25:02d}/{nested}f{i:04d}.txt"] = rng.randbytes(rng.randint(16, 600))
    for j in range(4):
        a[f"blobs/big{j}.bin"] = rng.randbytes(MIB)
    b: dict[str, bytes] = {}
    for i, (rel, data) in enumerate(sorted(a.items())):
        if i % 37 == 5:
            continue  # removed in B
        b[rel] = rng.randbytes(len(data) + 1) if i % 9 == 0 else data
    for i in range(40):
        b[f"added/n{i % 4}/n{i:03d}.txt"] = rng.randbytes(100)
    b["blobs/big1.bin"] = rng.randbytes(MIB)
    return a, b


@pytest.mark.slow
def test_random_kills_large_folder(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    a, b = folder_versions(7)
    write_tree(project / "staged/A/site", a)
    write_tree(project / "staged/B/site", b)
    write_tree(project / "live/site", a)
    snaps = {ver: snapshot(project / "staged" / ver / "site") for ver in ("A", "B")}
    assert len(snaps["A"]) > 2000 and snaps["A"] == snapshot(project / "live/site")
    promoted, rolled = random_kills(Versions(project, "site", snaps), 20240502, (4, 2), (2, 1))
    print(f"\n{promoted}\n{rolled}")
    shutil.rmtree(tmp_path, ignore_errors=True)


# ---------------------------------------------------------------------------------------
# 3. a killed process leaves no lock behind


@pytest.mark.parametrize(
    ("failpoint", "recovered"),
    [
        pytest.param("promote.backup.after", "undone", id="failpoint-before-commit"),
        pytest.param("promote.commit.switched", "completed", id="failpoint-after-commit"),
        pytest.param(None, "undone", id="kill-while-copying"),
    ],
)
def test_killed_promote_leaves_no_lock(
    tmp_path: Path, failpoint: str | None, recovered: str
) -> None:
    layout = Layout(make_project(tmp_path), "file")
    project, target = layout.project, layout.target
    snaps = layout.create()
    args = ["promote", layout.staged_arg("B"), "--target", layout.target_arg, "--json"]
    if failpoint is not None:
        crashed = lg(project, *args, failpoints=failpoint)
    else:
        staged = project / layout.staged_arg("B")
        write_random_file(staged, 48 * MIB)  # a copy slow enough to be caught in the act
        snaps["B"] = snapshot(staged)
        proc = spawn(project, args)
        deadline = time.monotonic() + 60
        while not leftovers(target):  # the staged copy is being written beside the target
            assert proc.poll() is None, collect(proc, args)
            assert time.monotonic() < deadline, "the staged copy never appeared"
            time.sleep(0.0005)
        proc.send_signal(signal.SIGSTOP)
        try:
            # frozen while it copies (on a very busy machine, possibly later: then recovery
            # completes it); never a mix
            frozen = classify(target, snaps["A"], snaps["B"])
            assert frozen in ("old", "new"), frozen
            recovered = "undone" if frozen == "old" else "completed"
            # the lock is real: while the first process lives, a second one is refused
            refused = layout.promote("C")
            assert refused.returncode == 4, refused
            assert refused.payload()["error"] == "locked", refused
        finally:
            proc.kill()
        crashed = collect(proc, args)
    assert crashed.returncode == KILLED, crashed

    runs = run_ids(project)
    interrupted = runs[0]
    assert interrupted["status"] == "running" and interrupted["action"] == "promote", runs

    # no `liftgate recover`: the next promote takes the lock and recovers the run itself
    ok(layout.promote("C"))
    assert holds(target, snaps["C"]) == "exactly"
    assert leftovers(target) == []

    shown = ok(lg(project, "runs", "show", interrupted["run_id"], "--json"))["run"]
    if recovered == "completed":
        assert shown["status"] == "ok", shown
        assert "completed by liftgate recover" in shown["message"], shown
    else:
        assert shown["status"] == "failed", shown
        assert "interrupted before its commit point" in shown["message"], shown
    assert [r["run_id"] for r in run_ids(project) if r["status"] == "running"] == []
    ok(lg(project, "history", "verify", "--json"))
    ok(lg(project, "evidence", "verify", interrupted["run_id"], "--json"))
    # and the promotion of C is undone onto whatever the interrupted run left in force
    ok(layout.rollback())
    assert holds(target, snaps["B" if recovered == "completed" else "A"]) == "exactly"
