"""Real HAProxy and nginx in front of two tiny slot backends, and a keep-alive test client.

Everything runs as the invoking user, root or not, on loopback ports, with every file
(config, pid, logs, temp folders, sockets) in a private folder. Each proxy runs in the
foreground in its own process group (``haproxy -W -db``, ``nginx -g 'daemon off;'``) and
``stop()`` kills that whole group; use the context managers (or call ``stop()`` in a
``finally``) so nothing outlives a failing test.
"""

from __future__ import annotations

import contextlib
import grp
import http.client
import io
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol, cast

__all__ = [
    "SLOT_NAMES",
    "ClientStats",
    "Haproxy",
    "Nginx",
    "SlotBackend",
    "TrafficClient",
    "Upstream",
    "fetch_slot",
    "find_program",
    "free_port",
    "slot_backends",
]

SLOT_NAMES = ("blue", "green")
START_TIMEOUT = 10.0


class Upstream(Protocol):
    """Something a proxy can route a slot to (a ``SlotBackend``, an Odoo server...)."""

    @property
    def address(self) -> str:
        """``host:port``."""
        ...


def find_program(name: str) -> str:
    """``name`` from PATH or the sbin folders a non-root PATH lacks; RuntimeError if absent
    (a missing proxy is an installation failure, never a reason to skip)."""
    found = shutil.which(name)
    if found:
        return found
    for folder in ("/usr/sbin", "/usr/local/sbin", "/sbin"):
        candidate = Path(folder, name)
        if os.access(candidate, os.X_OK):
            return str(candidate)
    raise RuntimeError(f"{name} is not installed (run `make install`)")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fetch_slot(port: int, *, timeout: float = 5.0) -> str:
    """One GET / through a new connection: the slot that answered."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/", headers={"Connection": "close"})
        response = conn.getresponse()
        body = response.read().decode().strip()
        if response.status != 200:
            raise RuntimeError(f"GET / through port {port} answered {response.status}: {body}")
        return body
    finally:
        conn.close()


# ---------------------------------------------------------------------------------------
# the slots: HTTP/1.1 keep-alive servers that answer their name
# ---------------------------------------------------------------------------------------


class _SlotServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    slot = ""
    hits = 0
    lock: threading.Lock

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a health check's bare connect, a proxy closing an idle connection: not news


class _SlotHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # one segment per response, sent at once (no Nagle/delayed-ACK stalls of ~40 ms)
    wbufsize = 1 << 16
    disable_nagle_algorithm = True
    server: _SlotServer

    def do_GET(self) -> None:
        body = f"{self.server.slot}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        with self.server.lock:
            self.server.hits += 1

    def log_message(self, format: str, *args: Any) -> None:
        pass


class SlotBackend:
    """A threading HTTP/1.1 server on a free loopback port that answers ``<slot>\\n``."""

    def __init__(self, slot: str) -> None:
        self.slot = slot
        self._server = _SlotServer(("127.0.0.1", 0), _SlotHandler)
        self._server.slot = slot
        self._server.lock = threading.Lock()
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def hits(self) -> int:
        return self._server.hits

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@contextlib.contextmanager
def slot_backends() -> Iterator[dict[str, SlotBackend]]:
    backends: dict[str, SlotBackend] = {}
    try:
        for slot in SLOT_NAMES:
            backends[slot] = SlotBackend(slot)
        yield backends
    finally:
        for backend in backends.values():
            backend.stop()


# ---------------------------------------------------------------------------------------
# proxy processes
# ---------------------------------------------------------------------------------------


def children(pid: int) -> list[int]:
    """The child processes of ``pid`` (from /proc)."""
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        pass
    kids: list[int] = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                fields = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if fields[1] == str(pid):
                kids.append(int(entry.name))
    return kids


def _title(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


class _Process:
    """A foreground server in its own process group, its output in ``log``."""

    name = "process"

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.log = workdir / f"{self.name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise RuntimeError(f"{self.name} is not running")
        return self.proc.pid

    def _spawn(self, argv: list[str]) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                argv,
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _wait_until(self, ready: Any, what: str, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited ({self.proc.returncode}) before {what}:\n{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{self.name}: no {what} after {timeout:g} s:\n{self.log_tail()}"
                )
            time.sleep(0.01)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """Stop the whole process group: SIGTERM, then SIGKILL if it lingers."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, sig)
            try:
                proc.wait(timeout=grace)
                break
            except subprocess.TimeoutExpired:
                continue
        # workers of a killed master may outlive it a moment: make sure the group is gone
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)


def _catches(pid: int, sig: int) -> bool:
    """Whether process ``pid`` has a handler installed for ``sig``."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    for line in status.splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (sig - 1) & 1)
    return False


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class Haproxy(_Process):
    """``haproxy -W -db -f haproxy.cfg``: frontend on ``port``, backend ``be_odoo`` with
    ``srv_blue`` and ``srv_green`` (the one not ``initial`` starts ``disabled``; with
    ``checks``, both health-checked), an admin socket, and a server-state file loaded at
    start and on every reload."""

    name = "haproxy"
    backend = "be_odoo"
    servers = {"blue": "srv_blue", "green": "srv_green"}  # noqa: RUF012

    def __init__(
        self,
        workdir: Path,
        backends: Mapping[str, Upstream],
        *,
        initial: str = "blue",
        checks: bool = False,
    ) -> None:
        super().__init__(workdir)
        self.binary = find_program("haproxy")
        self.port = free_port()
        # unix socket paths are limited to 107 bytes: if need be, keep it in a short folder
        self._sockdir: Path | None = None
        self.socket = workdir / "admin.sock"
        if len(os.fsencode(self.socket)) > 100:
            self._sockdir = Path(tempfile.mkdtemp(prefix="lg-hx-"))
            self.socket = self._sockdir / "admin.sock"
        self.state_file = workdir / "haproxy.state"
        self.config = workdir / "haproxy.cfg"
        lines = [
            "global",
            f"    stats socket {self.socket} level admin mode 600",
            f"    server-state-file {self.state_file}",
            "    hard-stop-after 5s",
            "defaults",
            "    mode http",
            "    timeout connect 2s",
            "    timeout client 30s",
            "    timeout server 30s",
            "    timeout http-keep-alive 30s",
            "    load-server-state-from-file global",
            "frontend fe_public",
            f"    bind 127.0.0.1:{self.port}",
            f"    default_backend {self.backend}",
            f"backend {self.backend}",
        ]
        for slot in SLOT_NAMES:
            options = "" if slot == initial else " disabled"
            if checks:  # a TCP connect every 100 ms; one failure marks the server DOWN
                options += " check inter 100ms fall 1 rise 1"
            lines.append(f"    server {self.servers[slot]} {backends[slot].address}{options}")
        self.config.write_text("\n".join(lines) + "\n")

    def switch_settings(self) -> dict[str, Any]:
        """``[env.X.switch]`` for this HAProxy (``state_file`` relative to ``workdir``)."""
        return {
            "kind": "haproxy",
            "socket": str(self.socket),
            "backend": self.backend,
            "servers": dict(self.servers),
            "state_file": self.state_file.name,
        }

    def start(self) -> Haproxy:
        if self._sockdir is not None:
            self._sockdir.mkdir(exist_ok=True)
        self._spawn([self.binary, "-W", "-db", "-f", str(self.config)])
        try:
            # the master installs its signal handlers only once the worker is up: a SIGUSR2
            # sent before that would be lost
            self._wait_until(
                lambda: (
                    _listening(self.port)
                    and self.socket.exists()
                    and self._answers()
                    and _catches(self.pid, signal.SIGUSR2)
                ),
                "listener, admin socket and master",
            )
        except BaseException:
            self.stop()
            raise
        return self

    def _answers(self) -> bool:
        try:
            return "Name:" in self.command("show info")
        except OSError:
            return False

    def command(self, line: str) -> str:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(str(self.socket))
            sock.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def reload(self) -> None:
        """SIGUSR2 to the master; returns once a new worker serves and the old ones exited."""
        before = set(children(self.pid))
        self._wait_until(lambda: _catches(self.pid, signal.SIGUSR2), "SIGUSR2 handler")
        os.kill(self.pid, signal.SIGUSR2)

        def done() -> bool:
            now = set(children(self.pid))
            return bool(now - before) and not (now & before)

        self._wait_until(done, "new worker after the reload")

    def stop(self) -> None:
        super().stop()
        if self._sockdir is not None:
            shutil.rmtree(self._sockdir, ignore_errors=True)


class Nginx(_Process):
    """``nginx -p <workdir> -c nginx.conf -g 'daemon off;'`` proxying ``port`` to
    ``upstream odoo``, which ``upstream.conf`` points at the ``initial`` slot."""

    name = "nginx"
    upstream_name = "odoo"

    def __init__(
        self, workdir: Path, backends: Mapping[str, Upstream], *, initial: str = "blue"
    ) -> None:
        super().__init__(workdir)
        self.binary = find_program("nginx")
        self.port = free_port()
        self.config = workdir / "nginx.conf"
        self.upstream_file = workdir / "upstream.conf"
        self.pid_file = workdir / "nginx.pid"
        self.error_log = workdir / "error.log"
        self.addresses = {slot: backends[slot].address for slot in SLOT_NAMES}
        self.upstream_file.write_text(
            f"upstream {self.upstream_name} {{\n"
            f"    server {self.addresses[initial]};\n"
            "    keepalive 16;\n"
            "}\n"
        )
        user = ""
        if os.geteuid() == 0:  # the user directive only means something to a root master
            user = (
                f"user {pwd.getpwuid(os.geteuid()).pw_name} {grp.getgrgid(os.getegid()).gr_name};\n"
            )
        temp = "\n".join(
            f"    {kind}_temp_path {workdir / kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        self.config.write_text(
            f"{user}"
            "worker_processes 2;\n"
            f"pid {self.pid_file};\n"
            f"error_log {self.error_log} notice;\n"
            "events { worker_connections 512; }\n"
            "http {\n"
            "    access_log off;\n"
            f"{temp}\n"
            f"    include {self.upstream_file};\n"
            "    server {\n"
            f"        listen 127.0.0.1:{self.port};\n"
            "        keepalive_timeout 60s;\n"
            "        keepalive_requests 100000;\n"
            "        location / {\n"
            f"            proxy_pass http://{self.upstream_name};\n"
            "            proxy_http_version 1.1;\n"
            '            proxy_set_header Connection "";\n'
            "        }\n"
            "    }\n"
            "}\n"
        )

    @property
    def _common(self) -> list[str]:
        return ["-p", f"{self.workdir}/", "-e", str(self.error_log), "-c", str(self.config)]

    @property
    def test_argv(self) -> list[str]:
        return [self.binary, "-t", "-q", *self._common]

    @property
    def reload_argv(self) -> list[str]:
        return [self.binary, *self._common, "-s", "reload"]

    def switch_settings(self) -> dict[str, Any]:
        """``[env.X.switch]`` for this nginx (files relative to ``workdir``)."""
        return {
            "kind": "nginx",
            "upstream_file": self.upstream_file.name,
            "upstream_name": self.upstream_name,
            "test": self.test_argv,
            "reload": self.reload_argv,
            "upstreams": dict(self.addresses),
            "pid_file": self.pid_file.name,
        }

    def start(self) -> Nginx:
        self._spawn([self.binary, *self._common, "-g", "daemon off;"])
        try:
            self._wait_until(
                lambda: _listening(self.port) and len(self.workers()) >= 2,
                "listener and workers",
            )
        except BaseException:
            self.stop()
            raise
        return self

    def workers(self) -> dict[int, str]:
        return {
            pid: title for pid in children(self.pid) if "worker process" in (title := _title(pid))
        }

    def reload(self) -> None:
        """``nginx -s reload``; returns once new workers run and the old ones are gone."""
        before = set(self.workers())
        subprocess.run(self.reload_argv, check=True, capture_output=True, timeout=30)

        def done() -> bool:
            now = set(self.workers())
            return bool(now - before) and not (now & before)

        self._wait_until(done, "new workers after the reload")


# ---------------------------------------------------------------------------------------
# the client
# ---------------------------------------------------------------------------------------


class _CountingReader(io.RawIOBase):
    """The socket's bytes, counted on the connection as they arrive."""

    def __init__(self, sock: socket.socket, conn: _CountingConnection) -> None:
        super().__init__()
        self._sock = sock
        self._conn = conn

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = self._sock.recv_into(buffer)
        self._conn.received += n
        return n


class _CountingSocket:
    """Wraps a connected socket so that http.client's reads are counted."""

    def __init__(self, sock: socket.socket, conn: _CountingConnection) -> None:
        self._sock = sock
        self._conn = conn

    def makefile(self, mode: str = "rb", *args: Any, **kwargs: Any) -> io.BufferedReader:
        return io.BufferedReader(_CountingReader(self._sock, self._conn))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class _CountingConnection(http.client.HTTPConnection):
    received = 0

    def connect(self) -> None:
        super().connect()
        self.sock = cast(socket.socket, _CountingSocket(self.sock, self))


@dataclass
class ClientStats:
    requests: int = 0
    retries: int = 0
    hits: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)


class TrafficClient:
    """Sequential ``GET <path>`` over keep-alive connections, in a thread, until ``stop()``.

    A request fails unless it gets a 200. With ``retry_reused`` it is retried once — as
    browsers do — only when it was sent on a reused (kept-alive) connection and that
    connection was closed (``RemoteDisconnected``, ``ConnectionResetError``,
    ``BrokenPipeError``) before any byte of the response arrived; the retry goes out on a
    new connection and its failure is a failure.
    """

    def __init__(
        self, port: int, *, retry_reused: bool, path: str = "/", timeout: float = 5.0
    ) -> None:
        self.port = port
        self.path = path
        self.retry_reused = retry_reused
        self.timeout = timeout
        self.stats = ClientStats()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="traffic-client", daemon=True)
        self._conn = _CountingConnection("127.0.0.1", port, timeout=timeout)

    def start(self) -> TrafficClient:
        self._thread.start()
        return self

    def wait_for(self, requests: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while self.stats.requests + len(self.stats.failures) < requests:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the client made no {requests} requests in {timeout:g} s")
            time.sleep(0.005)

    def stop(self) -> ClientStats:
        self._stop.set()
        self._thread.join(timeout=self.timeout + 5)
        self._conn.close()
        return self.stats

    def _run(self) -> None:
        while not self._stop.is_set():
            self._one()

    def _one(self) -> None:
        conn = self._conn
        for attempt in (1, 2):
            reused = conn.sock is not None
            before = conn.received
            try:
                conn.request("GET", self.path)
                response = conn.getresponse()
                body = response.read()
            except (ConnectionResetError, BrokenPipeError) as exc:  # RemoteDisconnected too
                conn.close()
                nothing = conn.received == before
                if self.retry_reused and attempt == 1 and reused and nothing:
                    self.stats.retries += 1
                    continue
                self.stats.failures.append(
                    f"{type(exc).__name__}: {exc} (attempt {attempt}, reused={reused}, "
                    f"{conn.received - before} response bytes)"
                )
                return
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                self.stats.failures.append(f"{type(exc).__name__}: {exc} (attempt {attempt})")
                return
            if response.status != 200:
                self.stats.failures.append(f"HTTP {response.status}: {body[:200]!r}")
                return
            self.stats.requests += 1
            self.stats.hits[body.decode(errors="replace").strip()] += 1
            return
