"""Background runs of the MCP server: ``python -m liftgate ... --json`` in a detached process.

The server picks the run id (``new_run_id``) and hands it to the child in
``LIFTGATE_RUN_ID``, which the child's first ``new_run_id()`` takes: the tool answers with
the run id at once. The child runs in its own session (the server may exit, the run goes
on); its stdout and stderr — the CLI's one JSON object at the end — go to
``<state_dir>/mcp/jobs/<run_id>.log``, and ``<run_id>.json`` records what was started.
A run that never reaches the ops store (refused while planning, NOOP) is still answered
from its log.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from liftgate.engine.runs import RUN_ID_ENV, RUN_ID_PATTERN
from liftgate.errors import OperationError

__all__ = ["Job", "Jobs"]


def with_json(argv: list[str]) -> list[str]:
    """``argv`` with ``--json`` before the ``--`` that ends its options (or at its end)."""
    if "--" in argv:
        cut = argv.index("--")
        return [*argv[:cut], "--json", *argv[cut:]]
    return [*argv, "--json"]


@dataclass(frozen=True)
class Job:
    run_id: str
    tool: str
    pid: int
    argv: list[str]
    log_path: Path
    started_at: str
    approval_id: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "tool": self.tool,
            "pid": self.pid,
            "argv": self.argv,
            "log_path": str(self.log_path),
            "started_at": self.started_at,
            "approval_id": self.approval_id,
        }


class Jobs:
    """The detached runs started by this project's MCP servers (files under ``root``)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._mutex = threading.Lock()

    def spawn(
        self,
        *,
        run_id: str,
        tool: str,
        cli_args: list[str],
        config_path: Path | None,
        cwd: Path,
        approval_id: str | None,
    ) -> Job:
        """Start ``liftgate [--config C] CLI_ARGS --json`` for ``run_id``; argv list, no shell."""
        if not RUN_ID_PATTERN.fullmatch(run_id):
            raise OperationError(f"{run_id!r} is not a run id")
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        argv = [sys.executable, "-m", "liftgate"]
        if config_path is not None:
            argv += ["--config", str(config_path)]
        argv += with_json(cli_args)
        log_path = self.root / f"{run_id}.log"
        env = {**os.environ, RUN_ID_ENV: run_id}
        if approval_id is not None:  # the run names the person who approved it (see promote)
            env["LIFTGATE_APPROVAL_ID"] = approval_id
        try:
            fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:
            raise OperationError(f"cannot create the log of run {run_id}: {exc}") from exc
        try:
            proc = subprocess.Popen(
                argv,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=fd,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
            )
        except OSError as exc:
            raise OperationError(f"cannot start the background run {run_id}: {exc}") from exc
        finally:
            os.close(fd)
        with self._mutex:
            self._procs[run_id] = proc
        job = Job(
            run_id=run_id,
            tool=tool,
            pid=proc.pid,
            argv=argv,
            log_path=log_path,
            started_at=dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            approval_id=approval_id,
        )
        record = self.root / f"{run_id}.json"
        tmp = record.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(job.as_dict(), sort_keys=True) + "\n")
        tmp.chmod(0o600)
        os.replace(tmp, record)
        return job

    def wait(self, run_id: str, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for a run this server started; True once it ended."""
        with self._mutex:
            proc = self._procs.get(run_id)
        if proc is None:
            return False
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    def load(self, run_id: str) -> Job | None:
        if not RUN_ID_PATTERN.fullmatch(run_id):
            return None
        try:
            data = json.loads((self.root / f"{run_id}.json").read_text())
        except (OSError, ValueError):
            return None
        return Job(
            run_id=data["run_id"],
            tool=data["tool"],
            pid=int(data["pid"]),
            argv=list(data["argv"]),
            log_path=Path(data["log_path"]),
            started_at=data["started_at"],
            approval_id=data.get("approval_id"),
        )

    def state(self, job: Job) -> dict[str, Any]:
        """``{"state": "running"|"exited", "exit_code", "result", "log_path"}`` of ``job``:
        ``result`` is the CLI's final JSON object once the process printed it."""
        result = _final_json(job.log_path)
        exit_code: int | None = None
        with self._mutex:
            proc = self._procs.get(job.run_id)
        if proc is not None:
            exit_code = proc.poll()  # also reaps it
            running = exit_code is None
        else:
            running = result is None and _alive(job.pid)
        return {
            "state": "running" if running else "exited",
            "exit_code": exit_code,
            "result": result,
            "log_path": str(job.log_path),
            "started_at": job.started_at,
            "approval_id": job.approval_id,
        }


def _final_json(log: Path) -> dict[str, Any] | None:
    """The last line of ``log`` that is a JSON object with a ``status`` (the CLI's output)."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        text = line.strip()
        if text.startswith("{"):
            with contextlib.suppress(ValueError):
                data = json.loads(text)
                if isinstance(data, dict) and "status" in data:
                    return data
    return None


def _alive(pid: int) -> bool:
    """A process ``pid`` exists and is not a zombie (a server restarted since it started it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    # a pid reused by another program is not our run
    return stat.rpartition(")")[2].split()[:1] != ["Z"] and b"liftgate" in cmdline
