"""STAND-INS for Odoo and its service manager, for liftgate's tests (neither is the real thing).

Odoo cannot be installed on the test machines. :mod:`odoo_standin.server` is a small fake
``odoo-bin`` (module updates/installs, HTTP health/login, ``neutralize``) working on the
real PostgreSQL database of :mod:`liftgate.sandbox.odoo_sample`, and
:mod:`odoo_standin.service` a tiny systemd (start/stop/restart/status with a pid file).
liftgate never imports them: it runs the command lines these helpers build, as it would
run a real ``odoo-bin`` and ``systemctl``.

Helpers::

    odoo_bin = write_odoo_bin(tmp / "bin")                 # executable odoo-bin wrapper
    conf = write_odoo_conf(tmp / "odoo.conf", host=..., port=..., user=..., password=None,
                           db=..., addons_path=[repo], data_dir=tmp / "data", http_port=port)
    service = write_service(tmp / "svc", odoo_bin, conf, http_port=port)
    subprocess.run(service["start"], check=True); wait_http(f"http://127.0.0.1:{port}/web/health")

    repo = make_addons_repo(tmp / "addons")                # a git repository of modules
    write_module(repo, "shop", version="1.2.0", files={"standin_update.sql": "..."})
    sha = commit(repo, "shop 1.2.0")
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "LOGFILE_NAME",
    "PIDFILE_NAME",
    "SERVICE_PY",
    "commit",
    "free_port",
    "git",
    "http_json",
    "http_request",
    "make_addons_repo",
    "run_odoo_bin",
    "service_toml",
    "wait_http",
    "write_module",
    "write_odoo_bin",
    "write_odoo_conf",
    "write_service",
]

STANDIN_DIR = Path(__file__).resolve().parent
SERVICE_PY = STANDIN_DIR / "service.py"
PIDFILE_NAME = "odoo.pid"
LOGFILE_NAME = "odoo.log"


# -- odoo-bin, odoo.conf, service ------------------------------------------------------------


def write_odoo_bin(folder: Path) -> Path:
    """Write ``folder/odoo-bin``: runs the stand-in server with this interpreter (has psycopg)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "odoo-bin"
    path.write_text(
        f"#!{sys.executable}\n"
        '"""odoo-bin of liftgate\'s tests: the Odoo server STAND-IN, not Odoo."""\n'
        "import sys\n\n"
        f"sys.path.insert(0, {str(STANDIN_DIR.parent)!r})\n"
        "from odoo_standin.server import main\n\n"
        "sys.exit(main())\n"
    )
    path.chmod(0o755)
    return path


def write_odoo_conf(
    path: Path,
    *,
    host: str,
    port: int,
    user: str,
    password: str | None,
    db: str,
    addons_path: Sequence[Path | str] | Path | str,
    data_dir: Path,
    http_port: int,
    http_interface: str = "127.0.0.1",
) -> Path:
    """Write an ``odoo.conf`` (``[options]``); ``password=None`` writes ``db_password = False``."""
    paths = [addons_path] if isinstance(addons_path, (str, Path)) else list(addons_path)
    lines = {
        "db_host": host,
        "db_port": str(port),
        "db_user": user,
        "db_password": "False" if password is None else password,
        "db_name": db,
        "addons_path": ",".join(str(p) for p in paths),
        "data_dir": str(data_dir),
        "http_port": str(http_port),
        "http_interface": http_interface,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("[options]\n" + "".join(f"{k} = {v}\n" for k, v in lines.items()))
    return path


def write_service(
    folder: Path,
    odoo_bin: Path,
    conf: Path,
    *,
    http_port: int,
    extra_args: Sequence[str] = (),
) -> dict[str, list[str]]:
    """The argv lists of a service running ``odoo-bin -c conf --http-port N``.

    Keys ``start``, ``stop``, ``restart`` and ``status``; the pid file
    (``folder/odoo.pid``) and log file (``folder/odoo.log``) live in ``folder``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    pidfile, logfile = str(folder / PIDFILE_NAME), str(folder / LOGFILE_NAME)
    server = [str(odoo_bin), "-c", str(conf), "--http-port", str(http_port), *extra_args]
    base = [sys.executable, str(SERVICE_PY)]
    return {
        "start": [*base, "start", "--pidfile", pidfile, "--logfile", logfile, "--", *server],
        "stop": [*base, "stop", "--pidfile", pidfile],
        "restart": [*base, "restart", "--pidfile", pidfile, "--logfile", logfile, "--", *server],
        "status": [*base, "status", "--pidfile", pidfile],
    }


def service_toml(service: Mapping[str, Sequence[str]]) -> str:
    """The inline TOML table of a liftgate.toml ``service`` key for ``write_service``'s argvs."""
    keys = ("start", "stop", "restart", "status")
    return "{ " + ", ".join(f"{k} = {json.dumps(list(service[k]))}" for k in keys) + " }"


def run_odoo_bin(
    odoo_bin: Path, *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``odoo-bin ARGS`` to completion (text output captured, never raises on exit code)."""
    return subprocess.run(
        [str(odoo_bin), *args], capture_output=True, text=True, timeout=timeout, check=False
    )


# -- HTTP ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy


def http_request(
    method: str, url: str, body: bytes | None = None, *, timeout: float = 10
) -> tuple[int, bytes]:
    """``(status, body)``; HTTP error statuses are returned, connection errors raised."""
    req = urllib.request.Request(url, data=body, method=method)  # noqa: S310 (tests' own URLs)
    if body is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with _OPENER.open(req, timeout=timeout) as resp:
            return int(resp.status), bytes(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def http_json(url: str, payload: object | None = None, *, timeout: float = 10) -> tuple[int, Any]:
    """GET (or POST ``payload`` as JSON) and decode the JSON answer."""
    body = None if payload is None else json.dumps(payload).encode()
    status, data = http_request("GET" if body is None else "POST", url, body, timeout=timeout)
    return status, json.loads(data)


def wait_http(url: str, timeout: float = 15.0) -> None:
    """Wait until ``url`` answers 200; raise :class:`TimeoutError` otherwise."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            status, _ = http_request("GET", url, timeout=2)
            if status == 200:
                return
            last = f"HTTP {status}"
        except OSError as exc:
            last = exc
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not answer 200 within {timeout:g}s (last: {last})")
        time.sleep(0.05)


# -- git repositories of addons --------------------------------------------------------------

_GIT_CONFIG = [
    "-c", "user.name=liftgate tests", "-c", "user.email=tests@liftgate.invalid",
    "-c", "commit.gpgsign=false", "-c", "init.defaultBranch=main", "-c", "core.autocrlf=false",
]  # fmt: skip


def git(repo: Path, *args: str) -> str:
    """Run ``git -C repo ARGS`` isolated from system/global config; return stdout (stripped)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull, GIT_TERMINAL_PROMPT="0")
    proc = subprocess.run(
        ["git", *_GIT_CONFIG, "-C", str(repo), *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
    return proc.stdout.strip()


def make_addons_repo(path: Path) -> Path:
    """``git init`` an empty repository (branch ``main``, no commit yet) at ``path``."""
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q")
    return path


def write_module(
    repo: Path,
    name: str,
    version: str = "1.0.0",
    depends: Sequence[str] = ("base",),
    license: str | None = None,
    extra_manifest: Mapping[str, object] | None = None,
    files: Mapping[str, str] | None = None,
) -> Path:
    """Write (or rewrite) module ``name`` in ``repo``: ``__manifest__.py``, ``__init__.py``, files.

    ``extra_manifest`` adds/overrides manifest keys (``{"standin_fail": "boom"}`` makes the
    stand-in fail on it); ``files`` maps module-relative paths to text (``standin_update.sql``
    runs when the module loads). Returns the module folder.
    """
    folder = repo / name
    folder.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, object] = {
        "name": name.replace("_", " ").title(),
        "version": version,
        "depends": list(depends),
        "author": "liftgate tests",
        "installable": True,
    }
    if license is not None:
        manifest["license"] = license
    manifest.update(extra_manifest or {})
    (folder / "__manifest__.py").write_text(
        "{\n" + "".join(f"    {k!r}: {v!r},\n" for k, v in manifest.items()) + "}\n"
    )
    (folder / "__init__.py").touch()
    for rel, text in (files or {}).items():
        target = folder / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return folder


def commit(repo: Path, message: str) -> str:
    """Stage everything and commit (empty commits allowed); return the new HEAD sha."""
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", message)
    return git(repo, "rev-parse", "HEAD")
