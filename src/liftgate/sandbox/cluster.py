"""A private, throw-away PostgreSQL cluster (the demo's embedded default, and the tests').

Usage::

    from liftgate.sandbox.cluster import start_cluster

    cluster = start_cluster(tmp_path / "pg")
    try:
        psycopg.connect(cluster.dsn)
        cluster.psql("select 1")
    finally:
        cluster.cleanup()  # stop + remove any private runtime dir

Design notes
------------
* Binaries come from ``/usr/lib/postgresql/<highest major>/bin``. A missing
  ``initdb`` raises :class:`RuntimeError` (run ``scripts/install-system.sh``):
  tests must fail, not skip, when PostgreSQL is not installed.
* The server listens on a unix socket only (``listen_addresses = ''``). The port
  number, picked free on 127.0.0.1, only names the socket file
  ``<socket dir>/.s.PGSQL.<port>``. ``fsync`` stays on: tests check durability.
* PostgreSQL refuses to run as root. When ``os.geteuid() == 0``, ``initdb`` and
  ``pg_ctl`` run as the ``postgres`` OS user through ``runuser -u postgres --``
  and the superuser role is ``postgres``. Otherwise they run as the current
  user, whose name is also the superuser role (PostgreSQL's own default), and
  :attr:`PgCluster.superuser` / :attr:`PgCluster.dsn` use that name.
* Where the files live: the data dir (``data``), socket dir (``sock``) and
  server log (``log/postgres.log``) go under :attr:`PgCluster.root_dir`, which is
  ``base_dir`` itself when the server user can traverse ``base_dir`` and all of
  its parents and the socket path fits the 107-byte ``sun_path`` limit.
  Otherwise (the usual case as root under pytest: ``/tmp/pytest-of-root`` is
  mode 0700, and pytest tmp paths can be long) it is a fresh
  ``tempfile.mkdtemp(prefix="liftgate-pg-")`` directory, chmod 0755, and
  ``base_dir`` only gets a ``cluster-location`` file naming it.
  :meth:`PgCluster.cleanup` removes such a private directory; an ``atexit``
  hook also stops the server and removes it if a test forgot.
* :meth:`PgCluster.start` runs ``initdb`` only the first time, so
  ``stop()`` / ``start()`` restarts the same cluster (crash/durability tests can
  ``stop("immediate")`` and start again). :meth:`PgCluster.stop` is idempotent.
"""

from __future__ import annotations

import atexit
import os
import pwd
import shutil
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

__all__ = ["PgCluster", "PgClusterError", "find_bin_dir", "start_cluster"]

PG_LIB_DIR = Path("/usr/lib/postgresql")
SERVER_OS_USER = "postgres"
STOP_MODES = ("smart", "fast", "immediate")
# sizeof(sockaddr_un.sun_path) is 108 on Linux, including the trailing NUL.
_SUN_PATH_MAX = 107
_SOCKET_NAME_LEN = len("/.s.PGSQL.65535")
_START_TIMEOUT_S = 60
_CMD_TIMEOUT_S = 120


class PgClusterError(RuntimeError):
    """A PostgreSQL command run by :class:`PgCluster` failed."""


def _major_key(path: Path) -> tuple[int, ...]:
    """Sort key for ``/usr/lib/postgresql/<ver>/bin``: ``"15"`` -> (15,), ``"9.6"`` -> (9, 6)."""
    try:
        return tuple(int(part) for part in path.parent.name.split("."))
    except ValueError:
        return (-1,)


def find_bin_dir(lib_dir: Path = PG_LIB_DIR) -> Path:
    """Return ``<lib_dir>/<highest major>/bin`` holding an ``initdb``."""
    candidates = [p.parent for p in lib_dir.glob("*/bin/initdb") if os.access(p, os.X_OK)]
    candidates = [c for c in candidates if _major_key(c) != (-1,)]
    if not candidates:
        raise RuntimeError(
            f"PostgreSQL server binaries not found: no {lib_dir}/<major>/bin/initdb; "
            "install them with scripts/install-system.sh (Debian package 'postgresql')"
        )
    return max(candidates, key=_major_key)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _quote_conninfo(value: str) -> str:
    """Quote a libpq conninfo value when needed."""
    if value and not any(c in value for c in " '\\\t\n="):
        return value
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


def _clean_env() -> dict[str, str]:
    """The environment minus libpq/PG variables that could redirect our commands."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.setdefault("LC_ALL", "C.UTF-8")
    return env


def _traversable_by(path: Path, uid: int, gid: int) -> bool:
    """True when ``uid``/``gid`` (not root) may search every directory from / to ``path``."""
    for d in [path, *path.parents]:
        st = d.stat()
        if st.st_uid == uid:
            bit = stat.S_IXUSR
        elif st.st_gid == gid:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not st.st_mode & bit:
            return False
    return True


class PgCluster:
    """A private PostgreSQL cluster listening on a unix socket only."""

    bin_dir: Path
    base_dir: Path
    root_dir: Path
    data_dir: Path
    socket_dir: Path
    log_file: Path
    port: int
    superuser: str

    def __init__(self, base_dir: Path) -> None:
        self.bin_dir = find_bin_dir()
        self.base_dir = Path(base_dir).absolute()
        self._as_root = os.geteuid() == 0
        if self._as_root:
            try:
                server = pwd.getpwnam(SERVER_OS_USER)
            except KeyError:
                raise RuntimeError(
                    f"running as root but OS user {SERVER_OS_USER!r} does not exist; "
                    "PostgreSQL refuses to run as root (install the 'postgresql' package)"
                ) from None
            self._uid, self._gid = server.pw_uid, server.pw_gid
            self.superuser = SERVER_OS_USER
        else:
            self._uid, self._gid = os.geteuid(), os.getegid()
            self.superuser = pwd.getpwuid(self._uid).pw_name
        self.port = _free_port()
        self._private_root: Path | None = None
        self._atexit_registered = False
        # May move to a private mkdtemp dir in _prepare_dirs().
        self._set_layout(self.base_dir)

    # -- layout ---------------------------------------------------------------

    def _set_layout(self, root: Path) -> None:
        self.root_dir = root
        self.data_dir = root / "data"
        self.socket_dir = root / "sock"
        self.log_file = root / "log" / "postgres.log"

    def _base_dir_usable(self) -> bool:
        if len(os.fsencode(self.base_dir / "sock")) + _SOCKET_NAME_LEN > _SUN_PATH_MAX:
            return False
        if self._as_root:
            return _traversable_by(self.base_dir, self._uid, self._gid)
        return True

    def _prepare_dirs(self) -> None:
        if (self.data_dir / "PG_VERSION").exists():
            return  # already initialised: restart in place
        self.base_dir.mkdir(parents=True, exist_ok=True)
        if not self._base_dir_usable():
            private = Path(tempfile.mkdtemp(prefix="liftgate-pg-"))
            private.chmod(0o755)
            self._private_root = private
            self._set_layout(private)
            (self.base_dir / "cluster-location").write_text(f"{private}\n")
        for d, mode in (
            (self.data_dir, 0o700),
            (self.socket_dir, 0o755),
            (self.log_file.parent, 0o755),
        ):
            d.mkdir(parents=True, exist_ok=True)
            d.chmod(mode)
            if self._as_root:
                os.chown(d, self._uid, self._gid)

    # -- commands -------------------------------------------------------------

    def _server_argv(self, argv: Sequence[str]) -> list[str]:
        if self._as_root:
            return ["runuser", "-u", SERVER_OS_USER, "--", *argv]
        return list(argv)

    def _run(
        self,
        argv: Sequence[str],
        *,
        as_server: bool = False,
        input_text: str | None = None,
        ok_codes: tuple[int, ...] = (0,),
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        full = self._server_argv(argv) if as_server else list(argv)
        proc = subprocess.run(
            full,
            input=input_text,
            stdin=None if input_text is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            cwd="/",  # the server user may not be able to read the caller's cwd
            env=dict(env) if env is not None else _clean_env(),
            timeout=_CMD_TIMEOUT_S,
            check=False,
        )
        if proc.returncode not in ok_codes:
            raise PgClusterError(
                f"command failed (exit {proc.returncode}): {' '.join(full)}\n"
                f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}{self._log_tail()}"
            )
        return proc

    def _log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return ""
        tail = "\n".join(text.splitlines()[-lines:])
        return f"\nserver log ({self.log_file}):\n{tail}"

    def _bin(self, name: str) -> str:
        return str(self.bin_dir / name)

    def _initdb(self) -> None:
        self._run(
            [
                self._bin("initdb"),
                "--pgdata",
                str(self.data_dir),
                "--auth=trust",
                "--username",
                self.superuser,
                "--encoding=UTF8",
                "--locale=C",
            ],
            as_server=True,
        )
        settings = {
            "listen_addresses": "''",
            "unix_socket_directories": f"'{self.socket_dir}'",
            "port": str(self.port),
            "shared_buffers": "128MB",
            "max_connections": "100",
            "logging_collector": "off",
        }
        conf = self.data_dir / "postgresql.conf"
        with conf.open("a", encoding="utf-8") as f:
            f.write("\n# added by liftgate.sandbox.cluster\n")
            for key, value in settings.items():
                f.write(f"{key} = {value}\n")

    def is_running(self) -> bool:
        """True when ``pg_ctl status`` reports a server running on :attr:`data_dir`."""
        if not (self.data_dir / "PG_VERSION").exists():
            return False
        proc = self._run(
            [self._bin("pg_ctl"), "status", "-D", str(self.data_dir)],
            as_server=True,
            ok_codes=(0, 3, 4),
        )
        return proc.returncode == 0

    def start(self) -> None:
        """``initdb`` (first time only), then ``pg_ctl start``; returns once it accepts connections.

        Does nothing when the server is already running.
        """
        self._prepare_dirs()
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        if not self._atexit_registered:
            atexit.register(self._atexit)
            self._atexit_registered = True
        if self.is_running():
            return
        self._run(
            [
                self._bin("pg_ctl"),
                "start",
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_file),
                "-w",
                "-t",
                str(_START_TIMEOUT_S),
            ],
            as_server=True,
        )
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + _START_TIMEOUT_S
        argv = [
            self._bin("pg_isready"),
            "-q",
            "-h",
            str(self.socket_dir),
            "-p",
            str(self.port),
            "-U",
            self.superuser,
            "-d",
            "postgres",
        ]
        while True:
            proc = self._run(argv, ok_codes=(0, 1, 2, 3))
            if proc.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise PgClusterError(
                    f"PostgreSQL in {self.data_dir} not ready after {_START_TIMEOUT_S}s"
                    f"{self._log_tail()}"
                )
            time.sleep(0.1)

    def stop(self, mode: str = "fast") -> None:
        """``pg_ctl stop -m <mode> -w``; does nothing when the server is not running."""
        if mode not in STOP_MODES:
            raise ValueError(f"stop mode must be one of {STOP_MODES}, not {mode!r}")
        if not self.is_running():
            return
        proc = self._run(
            [self._bin("pg_ctl"), "stop", "-D", str(self.data_dir), "-m", mode, "-w"],
            as_server=True,
            ok_codes=(0, 1),
        )
        # Exit 1 is fine only if the server went away on its own meanwhile.
        if proc.returncode != 0 and self.is_running():
            raise PgClusterError(
                f"pg_ctl stop -m {mode} failed for {self.data_dir}:\n"
                f"{proc.stderr}{self._log_tail()}"
            )

    def cleanup(self) -> None:
        """Stop the server and remove the private runtime dir, if one was made."""
        try:
            self.stop("fast")
        finally:
            if self._private_root is not None:
                shutil.rmtree(self._private_root, ignore_errors=True)
                self._private_root = None

    def _atexit(self) -> None:
        try:
            if self.is_running():
                self.stop("immediate")
        except (OSError, PgClusterError, subprocess.SubprocessError):
            pass
        if self._private_root is not None:
            shutil.rmtree(self._private_root, ignore_errors=True)

    # -- connecting -----------------------------------------------------------

    @property
    def dsn(self) -> str:
        """libpq conninfo for the ``postgres`` database as the superuser."""
        return self.conninfo("postgres")

    def conninfo(self, dbname: str) -> str:
        """libpq conninfo for ``dbname``: ``host=<socket dir> port=<port> user=... dbname=...``."""
        return " ".join(
            f"{key}={_quote_conninfo(value)}"
            for key, value in (
                ("host", str(self.socket_dir)),
                ("port", str(self.port)),
                ("user", self.superuser),
                ("dbname", dbname),
            )
        )

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        """Run ``sql`` with ``psql -X -v ON_ERROR_STOP=1 -At``; return its stdout unchanged.

        Raises :class:`PgClusterError` (with psql's stderr) when a statement fails.
        """
        proc = self._run(
            [
                self._bin("psql"),
                "-X",
                "-v",
                "ON_ERROR_STOP=1",
                "-At",
                "-d",
                self.conninfo(dbname),
                "-f",
                "-",
            ],
            input_text=sql,
        )
        return proc.stdout

    # -- context manager ------------------------------------------------------

    def __enter__(self) -> PgCluster:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cleanup()

    def __repr__(self) -> str:
        return f"PgCluster(data_dir={self.data_dir!s}, socket_dir={self.socket_dir!s})"


def start_cluster(base: Path) -> PgCluster:
    """Create a :class:`PgCluster` under ``base`` and start it."""
    cluster = PgCluster(base)
    cluster.start()
    return cluster
