"""An env's Odoo service: its configured commands, its health and its smoke checks.

Service commands are argv lists from ``liftgate.toml`` (``systemctl restart odoo``, a
container runtime, a supervisor...), run without a shell and with a time limit. Health is
Odoo's own ``GET /web/health`` answering ``{"status": "pass"}``; smoke checks are the env's
``smoke`` list (path, expected status, expected text).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from liftgate.envconfig import SmokeCheck
from liftgate.errors import OperationError

__all__ = [
    "CommandResult",
    "check_health",
    "is_running",
    "run_command",
    "run_smoke",
    "wait_health",
]

_OUTPUT_TAIL = 4000


@dataclass(frozen=True)
class CommandResult:
    argv: list[str]
    returncode: int
    seconds: float
    output: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "argv": self.argv,
            "returncode": self.returncode,
            "seconds": round(self.seconds, 3),
            "output_tail": self.output[-_OUTPUT_TAIL:],
        }


def run_command(argv: Sequence[str], what: str, *, timeout: float = 300.0) -> CommandResult:
    """Run one configured command; OperationError (one sentence) unless it exits 0."""
    started = time.monotonic()
    try:
        done = subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError:
        raise OperationError(f"{what}: command {argv[0]!r} not found") from None
    except PermissionError:
        raise OperationError(f"{what}: command {argv[0]!r} is not executable") from None
    except subprocess.TimeoutExpired:
        raise OperationError(f"{what}: command did not finish in {timeout:.0f} s") from None
    result = CommandResult(
        list(argv), done.returncode, time.monotonic() - started, done.stdout + done.stderr
    )
    if done.returncode != 0:
        lines = [ln for ln in result.output.strip().splitlines() if ln.strip()]
        tail = f": {lines[-1]}" if lines else ""
        raise OperationError(f"{what} failed with exit status {done.returncode}{tail}")
    return result


def is_running(argv: Sequence[str], *, timeout: float = 60.0) -> bool:
    """The service's ``status`` command: exit 0 means running (systemd's convention)."""
    try:
        done = subprocess.run(
            list(argv), capture_output=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise OperationError(f"the service's status command failed: {exc}") from None
    return done.returncode == 0


def _join(url: str, path: str) -> str:
    return url.rstrip("/") + path


def check_health(client: httpx.Client, url: str) -> tuple[bool, str]:
    """One ``GET /web/health``: (passed, what was seen)."""
    try:
        response = client.get(_join(url, "/web/health"))
    except httpx.HTTPError as exc:
        return False, f"{type(exc).__name__}: {exc}"
    if response.status_code != 200:
        return False, f"HTTP {response.status_code}"
    try:
        body = response.json()
    except ValueError:
        return False, "the answer is not JSON"
    if isinstance(body, dict) and body.get("status") == "pass":
        return True, "pass"
    return False, f"status {body.get('status') if isinstance(body, dict) else body!r}"


def wait_health(url: str, timeout: float, *, interval: float = 0.25) -> dict[str, Any]:
    """Poll ``/web/health`` until it passes or ``timeout`` seconds went by."""
    started = time.monotonic()
    attempts = 0
    seen = ""
    with httpx.Client(timeout=5.0) as client:
        while True:
            attempts += 1
            ok, seen = check_health(client, url)
            elapsed = time.monotonic() - started
            if ok or elapsed >= timeout:
                return {
                    "url": _join(url, "/web/health"),
                    "passed": ok,
                    "attempts": attempts,
                    "seconds": round(elapsed, 3),
                    "last": seen,
                }
            time.sleep(interval)


def run_smoke(url: str, checks: Sequence[SmokeCheck]) -> list[dict[str, Any]]:
    """Every smoke check once, in order; each result says what was expected and seen."""
    results: list[dict[str, Any]] = []
    with httpx.Client(timeout=15.0, follow_redirects=False) as client:
        for check in checks:
            entry: dict[str, Any] = {
                "path": check.path,
                "expected_status": check.status,
                "expected_text": check.contains,
            }
            started = time.monotonic()
            try:
                response = client.get(_join(url, check.path))
            except httpx.HTTPError as exc:
                entry.update(passed=False, error=f"{type(exc).__name__}: {exc}")
            else:
                entry["status"] = response.status_code
                problems = []
                if response.status_code != check.status:
                    problems.append(f"status {response.status_code}, expected {check.status}")
                if check.contains is not None and check.contains not in response.text:
                    problems.append(f"text {check.contains!r} not found")
                entry.update(passed=not problems, error="; ".join(problems) or None)
            entry["ms"] = round((time.monotonic() - started) * 1000, 1)
            results.append(entry)
    return results
