"""The nginx switch: an include file whose upstream block names the active slot's server.

``upstream_file`` holds ``upstream <upstream_name> { server <address>; keepalive ...; }``
(and whatever else you put there); the active slot is the one whose ``upstreams`` address
the block's only ``server`` line names. A cutover:

1. writes ``<file>.liftgate-previous`` (the old content) and then the new file, atomically
   and durably, changing nothing but that ``server`` address (a missing file is created
   from a template);
2. runs the ``test`` argv (``nginx -t ...``): on failure the old file is put back and the
   test's first error line is raised;
3. runs the ``reload`` argv; with ``pid_file`` set it then waits until the master has
   started new workers and told every old one to stop taking connections (nginx itself
   waits 100 ms between the two), so the next connection reaches the new slot, and a
   reload the master refused is noticed. On failure the old file is put back, nginx is
   reloaded again and the failure is raised;
4. removes the ``.liftgate-previous`` file.

While that file exists (a cutover was interrupted), ``active()`` refuses to answer: the
file on disk may not be what nginx runs. ``activate()`` finishes or redoes the cutover.
Keep-alive connections from clients to old workers are closed by nginx when it reloads;
browsers retry such a request on a new connection.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from liftgate.engine.fsops import atomic_write_bytes, fsync_dir
from liftgate.envconfig import NginxSwitchSettings
from liftgate.errors import ConfigError, SwitchError

from .base import (
    COMMAND_TIMEOUT,
    SLOTS,
    Cutover,
    Slot,
    check_writable_file,
    executable_problem,
    first_line,
    ms_since,
    redact_argv,
    resolve_argv,
    resolve_path,
    run_argv,
    slot_map,
)

__all__ = ["MARKER_SUFFIX", "RELOAD_WAIT", "NginxSwitch"]

MARKER_SUFFIX = ".liftgate-previous"
# how long a reload may take before it counts as refused (pid_file set)
RELOAD_WAIT = 10.0
# without pid_file: nginx starts the new workers, then stops the old ones 100 ms later
UNVERIFIED_SETTLE = 0.25
KEEPALIVE = 32
# an upstream server address: host:port, [v6]:port, unix:/path; nothing nginx would parse
# as syntax (blanks, quotes, ';', braces, '#', '$')
_ADDRESS = re.compile(r"[A-Za-z0-9._:\[\]/@\-]+")
_TEMPLATE = """\
# liftgate traffic switch: the active slot's server for upstream {name}
# (liftgate rewrites only the address of the server line; keep exactly one)
upstream {name} {{
    server {address};
    keepalive {keepalive};
}}
"""


class NginxSwitch:
    kind: str = "nginx"

    def __init__(
        self,
        settings: NginxSwitchSettings,
        base_dir: Path,
        *,
        reload_wait: float = RELOAD_WAIT,
        timeout: float = COMMAND_TIMEOUT,
    ) -> None:
        self.base_dir = base_dir
        self.upstream_file = resolve_path(base_dir, settings.upstream_file)
        self.upstream_name = settings.upstream_name
        self.upstreams = slot_map(settings.upstreams, "nginx upstreams", pattern=_ADDRESS)
        self.test_argv = resolve_argv(base_dir, settings.test, "nginx test")
        self.reload_argv = resolve_argv(base_dir, settings.reload, "nginx reload")
        self.pid_file = resolve_path(base_dir, settings.pid_file) if settings.pid_file else None
        if reload_wait <= 0 or timeout <= 0:
            raise ConfigError("the nginx switch's waits must be positive")
        self.reload_wait = reload_wait
        self.timeout = timeout

    # -- the interface ------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "upstream_file": str(self.upstream_file),
            "upstream_name": self.upstream_name,
            "upstreams": dict(self.upstreams),
            "test": redact_argv(self.test_argv),
            "reload": redact_argv(self.reload_argv),
            "pid_file": str(self.pid_file) if self.pid_file else None,
        }

    def active(self) -> Slot:
        real = self._real()
        marker = _marker(real)
        if marker.exists():
            raise SwitchError(
                f"a cutover of {self.upstream_file} was interrupted ({marker.name} is still "
                "there), so what nginx runs is unknown; activate a slot again to finish it"
            )
        data = self._read(real)
        if data is None:
            raise SwitchError(f"the nginx upstream file {self.upstream_file} does not exist")
        return self._slot_of(data)

    def check(self) -> None:
        check_writable_file(self.upstream_file, "the nginx upstream file")
        data = self._read(self._real())
        if data is not None:
            self._server_token(_decode(data))
        test = run_argv(
            self.test_argv, cwd=self.base_dir, what="the nginx config test", timeout=self.timeout
        )
        if not test.ok:
            reason = first_line(test.stderr, test.stdout) or f"exit {test.returncode}"
            raise SwitchError(f"the nginx config test fails: {reason}")
        problem = executable_problem(self.reload_argv[0])
        if problem is not None:
            raise SwitchError(f"the nginx reload command cannot run: {problem}")
        if self.pid_file is not None:
            self._master_pid(self.pid_file)

    def activate(self, slot: Slot) -> Cutover:
        started = time.perf_counter()
        if slot not in SLOTS:
            raise SwitchError(f"{slot!r} is not a slot (blue or green)")
        real = self._real()
        marker = _marker(real)
        master = self._master_pid(self.pid_file) if self.pid_file is not None else None
        interrupted = marker.exists()
        current = self._read(real)
        if interrupted:
            saved = self._read(marker)
            restore = saved if saved else None  # empty: the file did not exist before
        else:
            restore = current
        previous: Slot | None = None
        if not interrupted and current is not None:
            with contextlib.suppress(SwitchError):
                previous = self._slot_of(current)
        address = self.upstreams[slot]
        detail: dict[str, Any] = {
            "upstream_file": str(self.upstream_file),
            "server": address,
            "interrupted_cutover": interrupted,
        }
        if previous == slot:
            return Cutover(slot, previous, ms_since(started), False, detail)
        new = self._render(current, address)
        mode = stat.S_IMODE(os.stat(real).st_mode) if current is not None else 0o644
        try:
            if not interrupted:
                atomic_write_bytes(marker, restore or b"", mode=0o600)
            atomic_write_bytes(real, new, mode=mode)
        except OSError as exc:
            if not interrupted:
                self._put_back(real, marker, restore, mode)
            raise SwitchError(
                f"the nginx upstream file {self.upstream_file} cannot be written: "
                f"{exc.strerror or exc}"
            ) from exc
        detail["written_ms"] = ms_since(started)
        stays = previous or "the slot nginx runs now"

        try:
            test = run_argv(
                self.test_argv,
                cwd=self.base_dir,
                what="the nginx config test",
                timeout=self.timeout,
            )
        except SwitchError as exc:
            self._put_back(real, marker, restore, mode)
            raise SwitchError(
                f"{exc.message}; {self.upstream_file} is back as it was and traffic stays on "
                f"{stays}"
            ) from exc
        detail["test"] = test.summary()
        if not test.ok:
            self._put_back(real, marker, restore, mode)
            reason = first_line(test.stderr, test.stdout) or f"exit {test.returncode}"
            raise SwitchError(
                f"nginx refused the {slot} upstream ({reason}); {self.upstream_file} is back "
                f"as it was and traffic stays on {stays}"
            )

        workers = _workers(master) if master is not None else {}
        reload_started = time.perf_counter()
        failure = self._reload(master, workers)
        if failure is not None:
            self._put_back(real, marker, restore, mode)
            again = self._reload(master, _workers(master) if master is not None else {})
            if again is None:
                raise SwitchError(
                    f"the nginx reload failed ({failure}); {self.upstream_file} was put back "
                    f"and nginx reloaded with it, so traffic stays on {stays}"
                )
            raise SwitchError(
                f"the nginx reload failed ({failure}) and reloading again with "
                f"{self.upstream_file} put back failed too ({again}); check nginx now"
            )
        detail["reload_ms"] = ms_since(reload_started)
        _remove(marker)
        if master is None:
            # nothing tells when the old workers stop: leave nginx the time it takes
            time.sleep(UNVERIFIED_SETTLE)
        detail["verified"] = master is not None
        return Cutover(slot, previous, ms_since(started), True, detail)

    # -- the file -------------------------------------------------------------------------

    def _real(self) -> Path:
        # a symlinked upstream file stays a symlink: the file it points at is rewritten
        return Path(os.path.realpath(self.upstream_file))

    def _read(self, path: Path) -> bytes | None:
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise SwitchError(f"{path} cannot be read: {exc.strerror or exc}") from exc

    def _server_token(self, text: str) -> _Token:
        try:
            servers = _upstream_servers(text, self.upstream_name)
        except _ParseError as exc:
            raise SwitchError(f"{self.upstream_file} cannot be parsed: {exc}") from exc
        if servers is None:
            raise SwitchError(f"{self.upstream_file} has no 'upstream {self.upstream_name}' block")
        if len(servers) != 1:
            raise SwitchError(
                f"'upstream {self.upstream_name}' in {self.upstream_file} has {len(servers)} "
                "server lines; the switch needs exactly one"
            )
        return servers[0]

    def _slot_of(self, data: bytes) -> Slot:
        address = self._server_token(_decode(data)).text
        for slot in SLOTS:
            if address == self.upstreams[slot]:
                return slot
        raise SwitchError(
            f"{self.upstream_file} sends traffic to {address}, which is neither blue "
            f"({self.upstreams['blue']}) nor green ({self.upstreams['green']})"
        )

    def _render(self, current: bytes | None, address: str) -> bytes:
        if current is None:
            text = _TEMPLATE.format(name=self.upstream_name, address=address, keepalive=KEEPALIVE)
            return text.encode()
        text = _decode(current)
        token = self._server_token(text)
        return (text[: token.start] + address + text[token.end :]).encode(
            "utf-8", "surrogateescape"
        )

    def _put_back(self, real: Path, marker: Path, restore: bytes | None, mode: int) -> None:
        """The upstream file as it was before this cutover, then the marker removed."""
        try:
            if restore is None:
                _remove(real)
            else:
                atomic_write_bytes(real, restore, mode=mode)
        except OSError as exc:
            raise SwitchError(
                f"the cutover failed and {self.upstream_file} could not be put back "
                f"({exc.strerror or exc}); its old content is in {marker}"
            ) from exc
        _remove(marker)

    # -- the nginx processes ------------------------------------------------------------

    def _reload(self, master: int | None, workers: dict[int, str]) -> str | None:
        """Run the reload argv (and wait for its effect); why it failed, or None."""
        try:
            result = run_argv(
                self.reload_argv, cwd=self.base_dir, what="the nginx reload", timeout=self.timeout
            )
        except SwitchError as exc:
            return exc.message
        if not result.ok:
            reason = first_line(result.stderr, result.stdout)
            return f"{os.path.basename(self.reload_argv[0])} exited {result.returncode}" + (
                f": {reason}" if reason else ""
            )
        if master is not None and not self._wait_for_new_workers(master, workers):
            return (
                f"nginx did not replace its workers within {self.reload_wait:g} s, so it "
                "refused the new configuration (its error log says why)"
            )
        return None

    def _wait_for_new_workers(self, master: int, before: dict[int, str]) -> bool:
        """True once a new worker runs and every old one has stopped taking connections
        (an old worker sets its title to '... shutting down' just before it closes its
        listening sockets)."""
        deadline = time.monotonic() + self.reload_wait
        while True:
            now = _workers(master)
            fresh = [pid for pid in now if pid not in before]
            lingering = [pid for pid in before if pid in now and "shutting down" not in now[pid]]
            if fresh and not lingering:
                return True
            if time.monotonic() > deadline or not _alive(master):
                return False
            time.sleep(0.002)

    def _master_pid(self, pid_file: Path) -> int:
        try:
            text = pid_file.read_text(encoding="ascii", errors="replace").strip()
        except FileNotFoundError as exc:
            raise SwitchError(
                f"the nginx pid file {pid_file} does not exist (is nginx running?)"
            ) from exc
        except OSError as exc:
            raise SwitchError(f"{pid_file} cannot be read: {exc.strerror or exc}") from exc
        if not text.isdigit():
            raise SwitchError(f"the nginx pid file {pid_file} does not hold a process id")
        pid = int(text)
        if not _alive(pid):
            raise SwitchError(f"nginx is not running: process {pid} from {pid_file} is gone")
        return pid


# ---------------------------------------------------------------------------------------
# a reader for the part of nginx's configuration syntax an upstream file uses
# ---------------------------------------------------------------------------------------


class _ParseError(Exception):
    pass


@dataclass(frozen=True)
class _Token:
    text: str
    start: int
    end: int
    quoted: bool = False

    def punct(self, char: str) -> bool:
        return not self.quoted and self.text == char


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif c == "#":
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif c in "{};":
            tokens.append(_Token(c, i, i + 1))
            i += 1
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            if j >= n:
                raise _ParseError("a quoted string is not closed")
            tokens.append(_Token(text[i + 1 : j], i, j + 1, quoted=True))
            i = j + 1
        else:
            j = i
            while j < n and not text[j].isspace() and text[j] not in "{};":
                j += 2 if text[j] == "\\" else 1
            j = min(j, n)
            tokens.append(_Token(text[i:j], i, j))
            i = j
    return tokens


def _upstream_servers(text: str, name: str) -> list[_Token] | None:
    """The address token of every ``server`` line of ``upstream <name>``; None without one."""
    blocks: list[bool] = []  # per open block: is it our upstream?
    words: list[_Token] = []
    found = 0
    servers: list[_Token] = []
    for token in _tokenize(text):
        if token.punct("{"):
            ours = (
                len(words) == 2
                and not words[0].quoted
                and words[0].text == "upstream"
                and words[1].text == name
            )
            found += ours
            blocks.append(ours)
            words = []
        elif token.punct("}"):
            if words:
                raise _ParseError(f"'{words[0].text}' is not ended by ';'")
            if not blocks:
                raise _ParseError("a '}' closes no block")
            blocks.pop()
        elif token.punct(";"):
            if blocks and blocks[-1] and words and words[0].text == "server":
                if len(words) < 2:
                    raise _ParseError("a server line has no address")
                servers.append(words[1])
            words = []
        else:
            words.append(token)
    if blocks:
        raise _ParseError("a '{' is not closed")
    if words:
        raise _ParseError(f"'{words[0].text}' is not ended by ';'")
    if found > 1:
        raise _ParseError(f"'upstream {name}' appears {found} times")
    return servers if found else None


def _marker(real: Path) -> Path:
    return real.with_name(real.name + MARKER_SUFFIX)


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
        with contextlib.suppress(OSError):
            fsync_dir(path.parent)


def _alive(pid: int) -> bool:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return False
    return fields[0] != "Z"


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        pass
    kids: list[int] = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            fields = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 1 and fields[1] == str(pid):
            kids.append(int(entry.name))
    return kids


def _workers(master: int) -> dict[int, str]:
    """The master's worker processes: pid -> process title."""
    out: dict[int, str] = {}
    for pid in _children(master):
        try:
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        title = raw.replace(b"\0", b" ").decode("utf-8", "replace").strip()
        if "worker process" in title:
            out[pid] = title
    return out
