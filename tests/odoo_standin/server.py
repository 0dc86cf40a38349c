"""``odoo-bin`` STAND-IN for liftgate's tests: a small fake of the Odoo server, NOT Odoo.

Odoo cannot be installed on the test machines. This program honours the parts of
``odoo-bin``'s contract liftgate relies on, against a real PostgreSQL database holding the
sample Odoo-shaped schema (:mod:`liftgate.sandbox.odoo_sample`)::

    odoo-bin [-c CONF] [-d DB] [-u a,b|all] [-i a,b] [--stop-after-init] [--no-http]
             [--http-port N] [--http-interface ADDR] [--addons-path p1,p2] [--logfile F]
             [-D DATA_DIR] [--db_host H] [--db_port P] [-r USER] [-w PASSWORD]
    odoo-bin neutralize [-c CONF] -d DB

Options of the command line override those of ``[options]`` in CONF. Module loading is in
:mod:`odoo_standin.loading`. Logs use Odoo's format
(``2026-11-22 03:00:00,123 <pid> INFO <db> odoo.modules.loading: ...``) on stderr or in
``--logfile``; the database password is never logged. Exit codes: 0 success, 1 bad
configuration or neutralization failure, 2 bad command line, 255 (Odoo's ``-1``) when the
database could not be initialized (a module failed to load).

Without ``--stop-after-init`` the server answers HTTP/1.1 on ``http_interface:http_port``
(default ``127.0.0.1:8069``) until SIGTERM/SIGINT (exit 0):

* ``GET /web/health`` -> 200 ``{"status": "pass"}`` (``?db_server_status=1`` checks
  PostgreSQL too, 500 when it is down, as Odoo does);
* ``GET /web/login`` -> 200 HTML page reading the database, 500 when it cannot be read;
* ``POST /standin/write`` ``{"payload": "..."}`` -> 200 ``{"id": N}`` once committed in
  table ``standin_write``, 503 ``{"error": ..., "sqlstate": ...}`` when the database refuses;
* ``GET /standin/info`` -> ``{"db", "pid", "addons_path", "modules", "series"}``.

Every request opens its own database connection, so the database may be renamed,
recreated or made read-only between requests.
"""

from __future__ import annotations

import argparse
import configparser
import html
import json
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import psycopg

from odoo_standin import loading

__all__ = ["Options", "main"]

STANDIN_VERSION = "17.0"
_log = logging.getLogger("odoo")
_http_log = logging.getLogger("werkzeug")
_db_label = ["?"]  # the database name shown in log lines


# -- configuration --------------------------------------------------------------------------


@dataclass
class Options:
    config: Path | None = None
    db_host: str | None = None
    db_port: str | None = None
    db_user: str | None = None
    db_password: str | None = None
    db_name: str | None = None
    addons_path: list[Path] = field(default_factory=list)
    data_dir: Path = field(default_factory=lambda: Path.home() / ".local/share/Odoo")
    http_port: int = 8069
    http_interface: str = "127.0.0.1"
    logfile: Path | None = None
    update: list[str] = field(default_factory=list)
    init: list[str] = field(default_factory=list)
    stop_after_init: bool = False
    no_http: bool = False

    def connect_kwargs(self, db: str | None = None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "host": self.db_host,
            "port": self.db_port,
            "user": self.db_user,
            "password": self.db_password,
            "dbname": db or self.db_name,
        }
        kwargs = {k: v for k, v in kwargs.items() if v is not None}
        return {**kwargs, "connect_timeout": 5, "application_name": "odoo-standin"}

    def connect(self, db: str | None = None) -> psycopg.Connection[Any]:
        return psycopg.connect(**self.connect_kwargs(db))

    @property
    def filestore(self) -> Path:
        return self.data_dir / "filestore" / (self.db_name or "")


def _conf_value(value: str | None) -> str | None:
    """Odoo writes unset options as ``False``."""
    if value is None or value.strip() in ("", "False", "None"):
        return None
    return value.strip()


def _split(value: str | None) -> list[str]:
    return [p.strip() for p in (value or "").split(",") if p.strip()]


def _addons_dirs(value: str) -> list[Path]:
    return [Path(p).expanduser().absolute() for p in _split(value)]


def _checked_addons_path(value: str) -> list[Path]:
    """``--addons-path`` is checked like Odoo's option callback; the conf's is not."""
    paths = _addons_dirs(value)
    for path in paths:
        if not path.is_dir() or not any(
            (sub / "__manifest__.py").is_file() for sub in path.iterdir()
        ):
            raise argparse.ArgumentTypeError(
                f"the path {str(path)!r} is not a valid addons directory"
            )
    return paths


def _parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="Odoo server stand-in (tests only)")
    p.add_argument("-c", "--config", type=Path)
    p.add_argument("-d", "--database", dest="db_name")
    p.add_argument("--db_host")
    p.add_argument("--db_port")
    p.add_argument("-r", "--db_user")
    p.add_argument("-w", "--db_password")
    p.add_argument("--addons-path", type=_checked_addons_path)
    p.add_argument("-D", "--data-dir", type=Path)
    p.add_argument("--logfile", type=Path)
    if prog.endswith("neutralize"):
        return p
    p.add_argument("-u", "--update", action="append", default=[])
    p.add_argument("-i", "--init", action="append", default=[])
    p.add_argument("--stop-after-init", action="store_true")
    p.add_argument("--no-http", action="store_true")
    p.add_argument("-p", "--http-port", type=int)
    p.add_argument("--http-interface")
    # accepted and ignored, so usual service command lines run unchanged
    p.add_argument("--without-demo")
    p.add_argument("--log-level")
    p.add_argument("--workers", type=int)
    p.add_argument("--max-cron-threads", type=int)
    return p


def parse_options(argv: list[str], prog: str = "odoo-bin") -> Options:
    ns = _parser(prog).parse_args(argv)
    opts = Options(config=ns.config)
    if ns.config is not None:
        conf = configparser.RawConfigParser()
        if not conf.read(ns.config):
            raise SystemExit(f"{prog}: error: cannot read the configuration file {ns.config}")

        def get(key: str) -> str | None:
            return conf.get("options", key, fallback=None)

        opts.db_host = _conf_value(get("db_host"))
        opts.db_port = _conf_value(get("db_port"))
        opts.db_user = _conf_value(get("db_user"))
        opts.db_password = _conf_value(get("db_password"))
        opts.db_name = _conf_value(get("db_name"))
        opts.addons_path = _addons_dirs(_conf_value(get("addons_path")) or "")
        if data_dir := _conf_value(get("data_dir")):
            opts.data_dir = Path(data_dir).expanduser()
        if port := _conf_value(get("http_port")):
            opts.http_port = int(port)
        if iface := _conf_value(get("http_interface")):
            opts.http_interface = iface
        if logfile := _conf_value(get("logfile")):
            opts.logfile = Path(logfile)
    for name in ("db_host", "db_port", "db_user", "db_password", "db_name"):
        if getattr(ns, name) is not None:
            setattr(opts, name, getattr(ns, name))
    if ns.addons_path is not None:
        opts.addons_path = ns.addons_path
    if ns.data_dir is not None:
        opts.data_dir = ns.data_dir
    if ns.logfile is not None:
        opts.logfile = ns.logfile
    if prog.endswith("neutralize"):
        return opts
    opts.update = [m for value in ns.update for m in _split(value)]
    opts.init = [m for value in ns.init for m in _split(value)]
    opts.stop_after_init = ns.stop_after_init
    opts.no_http = ns.no_http
    if ns.http_port is not None:
        opts.http_port = ns.http_port
    if ns.http_interface is not None:
        opts.http_interface = ns.http_interface
    return opts


# -- logging --------------------------------------------------------------------------------


class _OdooFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = (
            f"{self.formatTime(record)} {os.getpid()} {record.levelname} {_db_label[0]} "
            f"{record.name}: {record.getMessage()}"
        )
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _setup_logging(logfile: Path | None) -> None:
    handler: logging.Handler
    if logfile is not None:
        logfile.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(logfile)
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_OdooFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


def _log_startup(opts: Options) -> None:
    _log.info("Odoo version %s (liftgate's Odoo server stand-in, not Odoo)", STANDIN_VERSION)
    if opts.config is not None:
        _log.info("Using configuration file at %s", opts.config.absolute())
    _log.info("addons paths: %s", [str(p) for p in opts.addons_path])
    _log.info(
        "database: %s@%s:%s",
        opts.db_user or "default",
        opts.db_host or "default",
        opts.db_port or "default",
    )


# -- module loading -------------------------------------------------------------------------


def _load(opts: Options) -> int:
    if not opts.db_name:
        _log.error("-u/-i need a database: give -d or db_name")
        return 1
    _db_label[0] = opts.db_name
    try:
        conn = opts.connect()
    except psycopg.Error as exc:
        _log.critical("Failed to initialize database `%s`: %s", opts.db_name, exc)
        return 255
    with conn:
        try:
            series = loading.db_series(conn)
            installed = loading.installed_modules(conn)
            conn.commit()
            available = loading.scan_addons(opts.addons_path)
            order = loading.plan_modules(available, installed, update=opts.update, init=opts.init)
            loading.load_modules(
                conn,
                available,
                order,
                filestore=opts.filestore,
                series=series,
                installed=installed,
            )
        except loading.LoadError as exc:
            logging.getLogger("odoo.modules.loading").error("%s", exc)
            logging.getLogger("odoo.service.server").critical(
                "Failed to initialize database `%s`.", opts.db_name
            )
            return 255
        except Exception:
            logging.getLogger("odoo.modules.loading").error(
                "Module loading failed; the current module's transaction is rolled back",
                exc_info=True,
            )
            logging.getLogger("odoo.service.server").critical(
                "Failed to initialize database `%s`.", opts.db_name
            )
            return 255
    return 0


# -- HTTP -----------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    opts: Options


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "Werkzeug/3.0 (Odoo stand-in)"

    @property
    def opts(self) -> Options:
        return cast(_Server, self.server).opts

    def log_message(self, format: str, *args: Any) -> None:
        _http_log.info(
            "%s - - [%s] %s", self.address_string(), self.log_date_time_string(), format % args
        )

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, data: object) -> None:
        self._send(status, json.dumps(data).encode(), "application/json")

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/web/health":
            self._health(parse_qs(url.query))
        elif url.path == "/web/login":
            self._login()
        elif url.path == "/standin/info":
            self._info()
        else:
            self._send(404, b"Not Found\n", "text/plain")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if urlsplit(self.path).path == "/standin/write":
            self._write(body)
        else:
            self._send(404, b"Not Found\n", "text/plain")

    def _health(self, query: dict[str, list[str]]) -> None:
        info: dict[str, object] = {"status": "pass"}
        status = 200
        if query.get("db_server_status", ["0"])[0] not in ("0", "", "false", "False"):
            try:
                self.opts.connect("postgres").close()
                info["db_server_status"] = True
            except psycopg.Error:
                info.update(db_server_status=False, status="fail")
                status = 500
        self._json(status, info)

    def _login(self) -> None:
        db = self.opts.db_name or ""
        try:
            with self.opts.connect() as conn:
                users = conn.execute("SELECT count(*) FROM res_users WHERE active").fetchone()
                param = conn.execute(
                    "SELECT value FROM ir_config_parameter WHERE key = 'database.uuid'"
                ).fetchone()
        except psycopg.Error as exc:
            logging.getLogger("odoo.http").error("login page: database %s: %s", db, exc)
            self._send(500, b"<h1>Internal Server Error</h1>\n", "text/html; charset=utf-8")
            return
        page = (
            '<!DOCTYPE html>\n<html><head><meta charset="utf-8"/><title>Odoo</title></head>\n'
            f'<body><form class="oe_login_form" method="post" action="/web/login">\n'
            f'<input type="hidden" name="db" value="{html.escape(db)}"/>\n'
            f'<p id="standin-db">{html.escape(db)}</p>\n'
            f'<p id="standin-users">{users[0] if users else 0} active users</p>\n'
            f'<p id="standin-uuid">{html.escape(param[0] if param else "")}</p>\n'
            "</form></body></html>\n"
        )
        self._send(200, page.encode(), "text/html; charset=utf-8")

    def _write(self, body: bytes) -> None:
        try:
            payload = json.loads(body)["payload"]
            if not isinstance(payload, str):
                raise TypeError("payload must be a string")
        except (ValueError, KeyError, TypeError) as exc:
            self._json(400, {"error": f"bad request: {exc}"})
            return
        try:
            with self.opts.connect() as conn:
                _ensure_write_table(conn)
                row = conn.execute(
                    "INSERT INTO standin_write (payload) VALUES (%s) RETURNING id", (payload,)
                ).fetchone()
            # leaving the block committed the row (or raised)
        except psycopg.Error as exc:
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
            logging.getLogger("odoo.sql_db").warning("write refused: %s", message)
            self._json(503, {"error": message, "sqlstate": exc.sqlstate})
            return
        assert row is not None
        self._json(200, {"id": row[0]})

    def _info(self) -> None:
        try:
            with self.opts.connect() as conn:
                series = loading.db_series(conn)
                modules = loading.installed_modules(conn)
        except psycopg.Error as exc:
            self._json(500, {"error": str(exc).strip()})
            return
        self._json(
            200,
            {
                "db": self.opts.db_name,
                "pid": os.getpid(),
                "addons_path": [str(p) for p in self.opts.addons_path],
                "modules": modules,
                "series": series,
            },
        )


def _ensure_write_table(conn: psycopg.Connection[Any]) -> None:
    found = conn.execute("SELECT to_regclass('standin_write')").fetchone()
    if found is None or found[0] is None:
        conn.execute(
            "CREATE TABLE standin_write (id serial PRIMARY KEY, payload text, "
            "at timestamptz DEFAULT now())"
        )


def _wait_for_signal() -> None:
    stop = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    while not stop.wait(0.2):
        pass
    logging.getLogger("odoo.service.server").info("Initiating shutdown")


def _serve(opts: Options) -> int:
    if opts.db_name:
        try:
            with opts.connect() as conn:
                _ensure_write_table(conn)
        except psycopg.Error as exc:
            _log.warning("standin_write not created (%s)", str(exc).strip().splitlines()[0])
    try:
        httpd = _Server((opts.http_interface, opts.http_port), _Handler)
    except OSError as exc:
        logging.getLogger("odoo.service.server").error(
            "cannot listen on %s:%s: %s", opts.http_interface, opts.http_port, exc
        )
        return 1
    httpd.opts = opts
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1})
    thread.daemon = True
    thread.start()
    logging.getLogger("odoo.service.server").info(
        "HTTP service (werkzeug) running on %s:%s", opts.http_interface, opts.http_port
    )
    _wait_for_signal()
    httpd.shutdown()
    httpd.server_close()
    return 0


# -- commands -------------------------------------------------------------------------------


def _neutralize(argv: list[str]) -> int:
    opts = parse_options(argv, prog="odoo-bin neutralize")
    _setup_logging(opts.logfile)
    _log_startup(opts)
    if not opts.db_name:
        _log.error('Neutralize command needs a database name. Use "-d" argument')
        return 1
    _db_label[0] = opts.db_name
    cli_log = logging.getLogger("odoo.cli.neutralize")
    cli_log.info("Starting %s database neutralization", opts.db_name)
    try:
        with opts.connect() as conn:
            loading.neutralize(conn)
    except psycopg.Error as exc:
        cli_log.critical("An error occurred during the neutralization: %s", exc)
        cli_log.critical("THE DATABASE IS NOT NEUTRALIZED!")
        return 1
    cli_log.info("Neutralization finished")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["neutralize"]:
        return _neutralize(args[1:])
    if args[:1] == ["server"]:
        args = args[1:]
    opts = parse_options(args)
    _setup_logging(opts.logfile)
    _log_startup(opts)
    _db_label[0] = opts.db_name or "?"
    rc = _load(opts) if opts.update or opts.init else 0
    if opts.stop_after_init:
        return rc
    if opts.no_http:
        _wait_for_signal()
        return 0
    started = time.monotonic()
    rc = _serve(opts)
    _log.info("stopped after %.1fs", time.monotonic() - started)
    return rc


if __name__ == "__main__":
    sys.exit(main())
