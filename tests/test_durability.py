"""``[durability] flush``: which system calls make a promotion durable, and in what order.

Each test runs ``liftgate promote`` (a real process) under ``strace`` and reads back the
flush and rename calls it made, with the path of every file descriptor (``-y``). A power
loss cannot be staged here; what the order of those calls proves is what a power loss
could take: nothing the switch depends on may still be unflushed when the rename happens.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from support.tree import cli_json, run_cli, snapshot

DEFAULT_MODE = '[project]\nroots = ["."]\n'
FILES_MODE = DEFAULT_MODE + '\n[durability]\nflush = "files"\n'
FILESYSTEM_MODE = DEFAULT_MODE + '\n[durability]\nflush = "filesystem"\n'
TRACED = "syncfs,fsync,fdatasync,rename,renameat,renameat2"
MANY = 300  # files in one folder of a promoted tree
# "1234  fsync(7</a/b>) = 0" or "1234  rename("a", "b") = 0"
_LINE = re.compile(r"^\d+\s+(?P<call>\w+)\((?P<args>.*)\)\s+=\s+(?P<ret>-?\d+)")
_FD_PATH = re.compile(r"^\d+<(?P<path>[^>]*)>")
_RESUMED = re.compile(r"^\d+\s+<\.\.\. \w+ resumed>(?P<rest>.*)$")


@dataclass(frozen=True)
class Call:
    name: str
    path: str  # the flushed fd's path, or the rename's destination
    source: str = ""  # the rename's source


def traced(project: Path, args: list[str], out: Path) -> tuple[dict[str, object], list[Call]]:
    """Run ``liftgate ARGS --json`` in ``project`` under strace; its result and its calls."""
    strace = shutil.which("strace")
    assert strace, "strace is missing: make install (scripts/install-system.sh) installs it"
    proc = subprocess.run(
        [
            strace,
            "-f",
            "-qq",
            "-y",
            "-s",
            "4096",
            "-e",
            f"trace={TRACED}",
            "-o",
            str(out),
            sys.executable,
            "-m",
            "liftgate",
            *args,
            "--json",
        ],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={k: v for k, v in os.environ.items() if k != "LIFTGATE_FAILPOINTS"},
    )
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    result = json.loads(proc.stdout)
    calls: list[Call] = []
    for line in _whole_calls(out.read_text(encoding="utf-8").splitlines()):
        match = _LINE.match(line)
        if match is None or match["ret"] != "0":
            continue
        name, argtext = match["call"], match["args"]
        if name.startswith("rename"):
            paths = re.findall(r'"((?:[^"\\]|\\.)*)"', argtext)
            calls.append(Call(name, str(project / paths[-1]), str(project / paths[0])))
        else:
            fd = _FD_PATH.match(argtext)
            calls.append(Call(name, fd["path"] if fd else argtext))
    return result, calls


def _whole_calls(lines: list[str]) -> list[str]:
    """strace's lines with each call interrupted by another thread's joined up again:
    "7  fsync(5</a> <unfinished ...>" + "7  <... fsync resumed>) = 0", placed where it
    returned."""
    pending: dict[str, str] = {}
    whole: list[str] = []
    for line in lines:
        pid = line.split(maxsplit=1)[0] if line.strip() else ""
        if line.endswith("<unfinished ...>"):
            pending[pid] = line[: -len("<unfinished ...>")].rstrip()
        elif (resumed := _RESUMED.match(line)) is not None and pid in pending:
            whole.append(pending.pop(pid) + resumed["rest"])
        else:
            whole.append(line)
    return whole


def make_project(tmp_path: Path, config: str) -> Path:
    project = tmp_path / "project"
    (project / "live").mkdir(parents=True)
    (project / "staged").mkdir()
    (project / "liftgate.toml").write_text(config, encoding="utf-8")
    return project.resolve()


def first(calls: list[Call], name: str, path: str) -> int:
    for n, call in enumerate(calls):
        if call.name.startswith(name) and call.path == path:
            return n
    raise AssertionError(f"no {name} of {path} in {calls}")


def switch_of(calls: list[Call], target: Path) -> int:
    """The index of the rename that put the new content at ``target``."""
    for n, call in enumerate(calls):
        if call.name.startswith("rename") and call.path == str(target):
            return n
    raise AssertionError(f"no rename onto {target} in {calls}")


def promote_twice(project: Path, tmp_path: Path) -> tuple[dict[str, object], list[Call]]:
    """A first promotion (untraced), then a traced one that takes a backup."""
    (project / "staged" / "one.conf").write_text("listen = 8080\n", encoding="utf-8")
    (project / "staged" / "two.conf").write_text("listen = 9090\n", encoding="utf-8")
    code, first_run = cli_json(["promote", "staged/one.conf", "--target", "live/app.conf"], project)
    assert code == 0, first_run
    return traced(
        project,
        ["promote", "staged/two.conf", "--target", "live/app.conf"],
        tmp_path / "trace.txt",
    )


@pytest.mark.parametrize("config", [DEFAULT_MODE, FILES_MODE], ids=["default", "explicit"])
def test_files_mode_fsyncs_each_write_before_the_switch_and_never_syncfs(
    tmp_path: Path, config: str
) -> None:
    """``flush = "files"`` is the default: a config without ``[durability]`` behaves the same."""
    project = make_project(tmp_path, config)
    result, calls = promote_twice(project, tmp_path)
    assert result["status"] == "OK", result
    state = project / ".liftgate"
    run_id = str(result["run_id"])
    evidence = state / "evidence" / run_id
    target = project / "live" / "app.conf"

    assert [c for c in calls if c.name == "syncfs"] == [], calls
    switch = switch_of(calls, target)
    temp = calls[switch].source
    # before the switch: the staged copy's bytes, the backup's entry, the journal (the ops
    # store's log, synced by SQLite itself) and the evidence written so far
    assert first(calls, "fsync", temp) < switch
    assert first(calls, "fsync", str(state / "backups")) < switch
    wal = str(state / "ops.sqlite-wal")
    assert any(c.path == wal and c.name in ("fsync", "fdatasync") for c in calls[:switch])
    for name in ("run_id.txt", "inputs.json", "plan.json"):
        assert first(calls, "fsync", str(evidence / name)) < switch
    assert first(calls, "fsync", str(evidence)) < switch
    # after it: the folder of the target, the history line and the sealed evidence
    after = calls[switch + 1 :]
    assert first(after, "fsync", str(target.parent)) >= 0
    assert first(after, "fsync", str(state / "history.jsonl")) >= 0
    for name in ("MANIFEST.sha256", "final_status.json", "summary.md"):
        assert first(after, "fsync", str(evidence / name)) >= 0
    assert target.read_text(encoding="utf-8") == "listen = 9090\n"


def test_filesystem_mode_flushes_with_syncfs_before_and_after_the_switch(tmp_path: Path) -> None:
    project = make_project(tmp_path, FILESYSTEM_MODE)
    result, calls = promote_twice(project, tmp_path)
    assert result["status"] == "OK", result
    switch = switch_of(calls, project / "live" / "app.conf")
    assert any(c.name == "syncfs" for c in calls[:switch]), calls
    assert any(c.name == "syncfs" for c in calls[switch + 1 :]), calls
    temp = calls[switch].source
    assert not any(c.path == temp for c in calls if c.name == "fsync"), calls  # syncfs did it


def test_files_mode_folder_promotion_is_fsynced_before_the_exchange(tmp_path: Path) -> None:
    project = make_project(tmp_path, DEFAULT_MODE)
    for version in ("a", "b"):
        folder = project / "staged" / f"site-{version}"
        (folder / "css").mkdir(parents=True)
        (folder / "index.html").write_text(f"<h1>{version}</h1>\n", encoding="utf-8")
        (folder / "css" / "site.css").write_text(f"/* {version} */\n", encoding="utf-8")
        (folder / "img").mkdir()
        for n in range(MANY):  # more files than one batch of fsync_many
            (folder / "img" / f"{n:03d}.svg").write_text(f"<svg>{version}{n}</svg>", "utf-8")
    code, first_run = cli_json(["promote", "staged/site-a", "--target", "live/site"], project)
    assert code == 0, first_run
    result, calls = traced(
        project, ["promote", "staged/site-b", "--target", "live/site"], tmp_path / "trace.txt"
    )
    assert result["status"] == "OK", result
    assert [c for c in calls if c.name == "syncfs"] == [], calls
    target = project / "live" / "site"
    switch = next(
        n
        for n, c in enumerate(calls)
        if c.name == "renameat2" and str(target) in (c.path, c.source)
    )
    temp = calls[switch].source if calls[switch].path == str(target) else calls[switch].path
    inner = ["index.html", "css/site.css", "css", "img", *(f"img/{n:03d}.svg" for n in range(MANY))]
    for name in inner:
        assert first(calls, "fsync", str(Path(temp) / name)) < switch, name
    assert first(calls, "fsync", temp) < switch
    assert first(calls[switch + 1 :], "fsync", str(target.parent)) >= 0
    assert (target / "index.html").read_text(encoding="utf-8") == "<h1>b</h1>\n"


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        ('[durability]\nflush = "sometimes"\n', "durability.flush"),
        ("[durability]\nflush = 1\n", "durability.flush"),
        ("[durability]\nfsync = true\n", "durability.fsync"),
    ],
)
def test_a_bad_durability_setting_is_refused_and_changes_nothing(
    tmp_path: Path, config: str, problem: str
) -> None:
    project = make_project(tmp_path, '[project]\nroots = ["."]\n\n' + config)
    (project / "staged" / "new.conf").write_text("listen = 1\n", encoding="utf-8")
    (project / "live" / "app.conf").write_text("listen = 0\n", encoding="utf-8")
    before = snapshot(project)
    proc = run_cli(["promote", "staged/new.conf", "--target", "live/app.conf"], project)
    assert proc.returncode != 0
    message = proc.stderr.strip()
    assert problem in message and "Traceback" not in message, message
    assert len(message.splitlines()) == 1, message
    assert snapshot(project) == before


def test_recover_fsyncs_the_whole_evidence_folder_of_a_run_another_process_began(
    tmp_path: Path,
) -> None:
    """A run killed just after its switch is completed by ``liftgate recover``, a process
    that did not write the bundle's first files: it flushes every file of the bundle, not
    only the ones it wrote itself."""
    project = make_project(tmp_path, DEFAULT_MODE)
    (project / "staged" / "one.conf").write_text("listen = 1\n", encoding="utf-8")
    (project / "staged" / "two.conf").write_text("listen = 2\n", encoding="utf-8")
    code, first_run = cli_json(["promote", "staged/one.conf", "--target", "live/app.conf"], project)
    assert code == 0, first_run
    env = {**os.environ, "LIFTGATE_FAILPOINTS": "promote.commit.after"}
    killed = subprocess.run(
        [
            sys.executable,
            "-m",
            "liftgate",
            "promote",
            "staged/two.conf",
            "--target",
            "live/app.conf",
        ],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    assert killed.returncode < 0, (killed.returncode, killed.stdout, killed.stderr)
    runs = [
        r for r in (project / ".liftgate" / "evidence").iterdir() if r.name != first_run["run_id"]
    ]
    assert len(runs) == 1, runs  # run ids sort by second only: pick the killed run by name
    evidence = runs[0]
    assert not (evidence / "MANIFEST.sha256").exists()
    _, calls = traced(project, ["recover"], tmp_path / "trace.txt")
    assert [c for c in calls if c.name == "syncfs"] == [], calls
    flushed = {c.path for c in calls if c.name == "fsync"}
    for name in ("run_id.txt", "inputs.json", "plan.json", "final_status.json", "MANIFEST.sha256"):
        assert str(evidence / name) in flushed, name
    assert str(evidence) in flushed and str(evidence.parent) in flushed
    assert (project / "live" / "app.conf").read_text(encoding="utf-8") == "listen = 2\n"
