"""Odoo environments from ``liftgate.toml`` (``[postgres]`` and ``[env.NAME]``).

Connection settings are merged from, in order of precedence: the env's ``dsn``, the env's
``odoo.conf`` (``db_host``, ``db_port``, ``db_user``, ``db_password``, ``db_name``,
``data_dir``), then ``[postgres] dsn``. A password may come from any of them, from
``PGPASSWORD`` or from ``~/.pgpass`` (libpq reads it). liftgate keeps the password in memory
only: it is passed to psycopg as an argument and to subprocesses as ``PGPASSWORD`` in their
environment, never on a command line, and it is registered with the redactor so it cannot
reach any record liftgate writes.
"""

from __future__ import annotations

import configparser
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from liftgate.engine.project import Project
from liftgate.errors import ConfigError, StoreError

__all__ = ["OdooEnv", "read_odoo_conf", "resolve_env"]


def read_odoo_conf(path: Path) -> dict[str, str]:
    """The ``[options]`` of an odoo.conf (values ``False``/empty left out)."""
    parser = configparser.RawConfigParser()
    try:
        with open(path, encoding="utf-8") as fh:
            parser.read_file(fh)
    except (OSError, configparser.Error) as exc:
        raise ConfigError(f"cannot read odoo.conf {path}: {exc}") from None
    if not parser.has_section("options"):
        raise ConfigError(f"{path} has no [options] section")
    return {k: v for k, v in parser.items("options") if v not in ("", "False", "None")}


@dataclass(frozen=True)
class OdooEnv:
    """One environment, resolved: where its database and filestore are."""

    name: str
    role: str
    db: str
    filestore: Path
    neutralize: bool
    params: dict[str, str]  # libpq parameters, without password and dbname
    password: str | None
    addons_path: str | None = None

    def conninfo(self, dbname: str | None = None) -> str:
        """libpq conninfo for ``dbname`` (default: the env's database), without password."""
        return make_conninfo(**{**self.params, "dbname": dbname or self.db})

    def connect(
        self, dbname: str | None = None, *, autocommit: bool = False
    ) -> psycopg.Connection[Any]:
        kwargs: dict[str, Any] = {"autocommit": autocommit, "connect_timeout": 15}
        if self.password:
            kwargs["password"] = self.password
        try:
            return psycopg.connect(self.conninfo(dbname), **kwargs)
        except psycopg.Error as exc:
            where = self.params.get("host", "local socket")
            raise StoreError(
                f"cannot connect to database {dbname or self.db} on {where} as "
                f"{self.params.get('user', 'the default role')}: {_first_line(exc)}"
            ) from None

    def child_env(self) -> dict[str, str]:
        """Environment for pg_dump/pg_restore/psql: the password travels here, not in argv."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["PGCONNECT_TIMEOUT"] = "15"
        if self.password:
            env["PGPASSWORD"] = self.password
        elif "PGPASSWORD" in os.environ:
            env["PGPASSWORD"] = os.environ["PGPASSWORD"]
        if "PGPASSFILE" in os.environ:
            env["PGPASSFILE"] = os.environ["PGPASSFILE"]
        return env


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _parse(dsn: str | None, what: str) -> dict[str, str]:
    if not dsn:
        return {}
    try:
        return {k: str(v) for k, v in conninfo_to_dict(dsn).items() if v is not None}
    except psycopg.ProgrammingError:
        raise ConfigError(f"{what} is not a valid libpq connection string") from None


def resolve_env(project: Project, name: str) -> OdooEnv:
    """The env ``name``, or one slot of a production env with slots (``prod.blue``)."""
    settings = project.config.settings
    env = settings.env.get(name)
    slot = None
    if env is None and "." in name:
        parent_name, _, slot_name = name.rpartition(".")
        parent = settings.env.get(parent_name)
        if parent is not None and parent.slots is not None and slot_name in parent.slots:
            env, slot = parent, parent.slots[slot_name]
    if env is None:
        known = ", ".join(sorted(settings.env)) or "none"
        raise ConfigError(f"there is no environment {name!r} in liftgate.toml (known: {known})")
    if env.slots is not None and slot is None:
        raise ConfigError(
            f"env.{name} has blue/green slots: name one of them ({name}.blue, {name}.green)"
        )
    db_name = slot.db if slot is not None else env.db
    filestore_setting = slot.filestore if slot is not None else env.filestore
    dsn = (slot.dsn if slot is not None else None) or env.dsn
    odoo_conf = (slot.odoo_conf if slot is not None else None) or env.odoo_conf
    base = project.config.base_dir
    params = _parse(settings.postgres.dsn, "[postgres] dsn")
    conf: dict[str, str] = {}
    if odoo_conf:
        conf = read_odoo_conf((base / odoo_conf).resolve())
        for key, param in (
            ("db_host", "host"),
            ("db_port", "port"),
            ("db_user", "user"),
            ("db_password", "password"),
        ):
            if key in conf:
                params[param] = conf[key]
    params.update(_parse(dsn, f"env.{name}.dsn"))
    password = params.pop("password", None) or None
    params.pop("dbname", None)
    db = db_name or conf.get("db_name")
    if not db:
        raise ConfigError(f"env.{name} needs db (or db_name in its odoo.conf)")
    if filestore_setting:
        filestore = (base / filestore_setting).resolve()
    elif "data_dir" in conf:
        filestore = (base / conf["data_dir"]).resolve() / "filestore" / db
    else:
        raise ConfigError(f"env.{name} needs filestore (or data_dir in its odoo.conf)")
    if password:
        project.redactor.add_value(password)
    if "PGPASSWORD" in os.environ:
        project.redactor.add_value(os.environ["PGPASSWORD"])
    return OdooEnv(
        name=name,
        role=env.role,
        db=db,
        filestore=filestore,
        neutralize=env.wants_neutralize,
        params=params,
        password=password,
        addons_path=conf.get("addons_path"),
    )
