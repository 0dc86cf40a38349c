"""Copy a database and its filestore into a production env's inactive slot.

Two ways to copy a database, both as the env's own (non-superuser, CREATEDB) role:

* :func:`copy_template` — ``CREATE DATABASE dst TEMPLATE src STRATEGY FILE_COPY``. Fast
  (files are copied, nothing is re-indexed), but PostgreSQL refuses a template with other
  sessions, so ``src`` refuses connections meanwhile: ``ALTER DATABASE src ALLOW_CONNECTIONS
  false`` (allowed to the owner; it refuses superusers too), its sessions are ended, the
  copy made, and ``ALLOW_CONNECTIONS true`` is set again whatever happened. That interval
  is the copy's outage (``outage_seconds``). ``FILE_COPY`` checkpoints twice; ``WAL_LOG``
  (15's default) writes the copy through the WAL instead.
* :func:`copy_dump` — ``pg_dump --format=directory --jobs`` of ``src`` (one consistent
  snapshot; readers and writers of ``src`` keep working), then ``pg_restore --jobs
  --exit-on-error --no-owner`` into a new ``dst``. No outage, slower for big databases.

Database-level settings (``ALTER DATABASE ... SET``, such as the freeze of
:mod:`liftgate.odoo.freeze`) live in ``pg_db_role_setting`` and are copied by neither way;
both still ``RESET default_transaction_read_only`` on ``dst`` and verify it is not frozen,
so a copy of a frozen blue is a writable green.

The filestore is rebuilt with hard links (:func:`copy_filestore`): Odoo never rewrites a
filestore file in place, it writes new ones, so sharing inodes is safe.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import psycopg
from psycopg import sql

from liftgate.engine.fsops import fsync_dir, link_or_copy_tree, rename_noreplace
from liftgate.engine.redaction import Redactor
from liftgate.errors import OperationError, UsageError
from liftgate.odoo.env import OdooEnv
from liftgate.odoo.freeze import end_sessions, is_frozen
from liftgate.odoo.pgtools import PgTools, database_exists, server_info

__all__ = [
    "Alone",
    "CopyReport",
    "copy_dump",
    "copy_filestore",
    "copy_template",
    "database_size",
    "drop_database",
    "rename_alone",
    "run_alone",
]

_PARAM = sql.Identifier("default_transaction_read_only")
_PROTECTED = frozenset({"postgres", "template0", "template1"})


@dataclass(frozen=True)
class CopyReport:
    strategy: str  # "template" | "dump"
    src_db: str
    dst_db: str
    seconds: float
    outage_seconds: float  # how long src refused connections (0 for a dump)
    bytes: int  # pg_database_size of the copy
    detail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _require_autocommit(admin: psycopg.Connection[Any]) -> None:
    if not admin.autocommit:
        raise UsageError("CREATE/ALTER/DROP DATABASE need an autocommit connection")


def database_size(admin: psycopg.Connection[Any], db: str) -> int:
    """``pg_database_size(db)`` in bytes (any role may read it for a database it may
    connect to); OperationError if it does not exist."""
    try:
        row = admin.execute("SELECT pg_database_size(%s::text)", (db,)).fetchone()
    except psycopg.Error as exc:
        raise OperationError(f"cannot read the size of database {db}: {_first_line(exc)}") from None
    assert row is not None
    return int(row[0])


def _allow_connections(admin: psycopg.Connection[Any], db: str, allow: bool) -> None:
    admin.execute(
        sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS {}").format(
            sql.Identifier(db), sql.SQL("true" if allow else "false")
        )
    )


def _allows_connections(admin: psycopg.Connection[Any], db: str) -> bool:
    row = admin.execute("SELECT datallowconn FROM pg_database WHERE datname = %s", (db,)).fetchone()
    return bool(row and row[0])


def _unfreeze_copy(admin: psycopg.Connection[Any], dst: str) -> None:
    """A new copy never carries a freeze; RESET anyway and check."""
    admin.execute(sql.SQL("ALTER DATABASE {} RESET {}").format(sql.Identifier(dst), _PARAM))
    if is_frozen(admin, dst):
        raise OperationError(f"the copy {dst} is still read-only after RESET")


@dataclass(frozen=True)
class Alone:
    """How :func:`run_alone` got its statement through."""

    attempts: int
    sessions_ended: int


def run_alone(
    admin: psycopg.Connection[Any],
    db: str,
    statement: sql.Composed,
    *,
    failing: str,
    hint: str | None = None,
    attempts: int = 20,
) -> Alone:
    """Execute ``statement`` — one PostgreSQL refuses while other sessions use ``db``
    (``CREATE DATABASE ... TEMPLATE db``, ``DROP DATABASE db``, ``ALTER DATABASE db RENAME``)
    — after ending ``db``'s sessions, and again while a client keeps reconnecting
    (``ObjectInUse``). A session this role may not end fails at once (the statement would
    wait 5 s for it and fail): OperationError ``"<failing>: other sessions stayed
    connected ..."``. Other errors of the statement propagate as psycopg errors."""
    ended = 0
    busy: tuple[str, ...] = ()
    for attempt in range(1, attempts + 1):
        result = end_sessions(admin, db, recheck=False)
        ended += result.ended
        busy = result.not_ended
        if busy:
            time.sleep(0.2)
            busy = end_sessions(admin, db, recheck=False).not_ended
            if busy:
                break
        try:
            admin.execute(statement)
            return Alone(attempt, ended)
        except psycopg.errors.ObjectInUse:
            time.sleep(min(0.05 * attempt, 0.5))
    why = f": {'; '.join(busy[:3])}" if busy else ""
    raise OperationError(f"{failing}: other sessions stayed connected to {db}{why}", hint=hint)


def rename_alone(admin: psycopg.Connection[Any], old: str, new: str) -> None:
    """``ALTER DATABASE old RENAME TO new`` with ``old``'s sessions ended (see run_alone)."""
    _require_autocommit(admin)
    statement = sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
        sql.Identifier(old), sql.Identifier(new)
    )
    try:
        run_alone(admin, old, statement, failing=f"cannot rename database {old}")
    except psycopg.Error as exc:
        raise OperationError(f"cannot rename database {old}: {_first_line(exc)}") from None


def copy_template(
    admin: psycopg.Connection[Any],
    src_db: str,
    dst_db: str,
    *,
    strategy: Literal["file_copy", "wal_log"] = "file_copy",
    attempts: int = 20,
) -> CopyReport:
    """``CREATE DATABASE dst_db TEMPLATE src_db``, with ``src_db`` refusing connections
    meanwhile (see the module docstring). ``admin``: autocommit, as ``src_db``'s owner with
    CREATEDB, not connected to ``src_db``.

    ``ALLOW_CONNECTIONS true`` is set again on ``src_db`` in every case (also when it was
    false before: a crashed earlier copy). Raises :class:`OperationError` when the copy fails
    (``dst_db`` exists, sessions that cannot be ended keep ``src_db`` busy, ...); a ``dst_db``
    that existed before is never dropped.
    """
    _require_autocommit(admin)
    if src_db == dst_db:
        raise UsageError("the source and the copy must be different databases")
    if admin.info.dbname == src_db:
        raise UsageError(
            f"the maintenance connection is connected to {src_db} itself; connect to another "
            "database to copy it"
        )
    if not database_exists(admin, src_db):
        raise OperationError(f"cannot copy database {src_db}: it does not exist")
    clause: sql.Composable = sql.SQL("")
    if admin.info.server_version >= 150000:
        clause = sql.SQL(" STRATEGY {}").format(sql.SQL(strategy.upper()))
    statement = sql.SQL("CREATE DATABASE {} TEMPLATE {}{}").format(
        sql.Identifier(dst_db), sql.Identifier(src_db), clause
    )
    was_allowed = _allows_connections(admin, src_db)
    started = time.monotonic()
    try:
        _allow_connections(admin, src_db, False)
    except psycopg.Error as exc:
        raise OperationError(
            f"cannot make database {src_db} refuse connections: {_first_line(exc)}",
            hint="ALTER DATABASE ... ALLOW_CONNECTIONS needs the database's owner",
        ) from None
    outage_start = time.monotonic()
    outage = 0.0
    try:
        try:
            alone = run_alone(
                admin,
                src_db,
                statement,
                failing=f"cannot copy database {src_db}",
                hint="end them (or stop the program that holds them) and try again, or copy "
                "with a dump, which needs no exclusive access",
                attempts=attempts,
            )
        except psycopg.errors.DuplicateDatabase:
            raise OperationError(
                f"cannot copy database {src_db} to {dst_db}: {dst_db} already exists"
            ) from None
        except psycopg.Error as exc:
            raise OperationError(
                f"cannot copy database {src_db} to {dst_db}: {_first_line(exc)}"
            ) from None
    finally:
        try:
            _allow_connections(admin, src_db, True)
        except psycopg.Error as exc:
            raise OperationError(
                f"database {src_db} still refuses connections: cannot set ALLOW_CONNECTIONS "
                f"back to true: {_first_line(exc)}",
                hint=f"run ALTER DATABASE {src_db} ALLOW_CONNECTIONS true as its owner",
            ) from None
        outage = time.monotonic() - outage_start
    _unfreeze_copy(admin, dst_db)
    seconds = time.monotonic() - started
    return CopyReport(
        strategy="template",
        src_db=src_db,
        dst_db=dst_db,
        seconds=round(seconds, 4),
        outage_seconds=round(outage, 4),
        bytes=database_size(admin, dst_db),
        detail={
            "pg_strategy": strategy if admin.info.server_version >= 150000 else "file_copy",
            "attempts": alone.attempts,
            "sessions_ended": alone.sessions_ended,
            "src_allowed_connections_before": was_allowed,
            "src_frozen": is_frozen(admin, src_db),
        },
    )


def _create_like(admin: psycopg.Connection[Any], src_db: str, dst_db: str) -> None:
    """``CREATE DATABASE dst_db`` from template0 with ``src_db``'s encoding and locale."""
    version = admin.info.server_version
    if version >= 170000:
        locale = "datlocprovider, datlocale"
    elif version >= 150000:
        locale = "datlocprovider, daticulocale"
    else:
        locale = "'c'::\"char\", NULL::text"
    row = admin.execute(
        sql.SQL(
            "SELECT pg_encoding_to_char(encoding), datcollate, datctype, {} "
            "FROM pg_database WHERE datname = %s"
        ).format(sql.SQL(locale)),
        (src_db,),
    ).fetchone()
    if row is None:
        raise OperationError(f"cannot copy database {src_db}: it does not exist")
    encoding, collate, ctype, provider, provider_locale = row
    parts: list[sql.Composable] = [
        sql.SQL(
            "CREATE DATABASE {} TEMPLATE template0 ENCODING {} LC_COLLATE {} LC_CTYPE {}"
        ).format(
            sql.Identifier(dst_db), sql.Literal(encoding), sql.Literal(collate), sql.Literal(ctype)
        )
    ]
    if provider == "i" and provider_locale:
        parts.append(
            sql.SQL(" LOCALE_PROVIDER icu ICU_LOCALE {}").format(sql.Literal(provider_locale))
        )
    elif provider == "b" and provider_locale:
        parts.append(
            sql.SQL(" LOCALE_PROVIDER builtin BUILTIN_LOCALE {}").format(
                sql.Literal(provider_locale)
            )
        )
    try:
        admin.execute(sql.Composed(parts))
    except psycopg.errors.DuplicateDatabase:
        raise OperationError(
            f"cannot copy database {src_db} to {dst_db}: {dst_db} already exists"
        ) from None
    except psycopg.Error as exc:
        raise OperationError(f"cannot create database {dst_db}: {_first_line(exc)}") from None


def _failed_statement(stderr: str) -> str | None:
    for line in stderr.splitlines():
        if "Command was:" in line:
            return line.split("Command was:", 1)[1].strip()[:300]
    return None


def copy_dump(
    env: OdooEnv,
    src_db: str,
    dst_db: str,
    *,
    jobs: int = 4,
    workdir: Path | None = None,
    redactor: Redactor | None = None,
) -> CopyReport:
    """Copy ``src_db`` to a new ``dst_db`` with ``pg_dump``/``pg_restore``, as ``env``'s role.

    The dump (directory format, uncompressed, ``jobs`` workers) goes to a temporary folder in
    ``workdir`` (default: the system's) that is removed afterwards. ``pg_restore
    --exit-on-error --no-owner`` makes the env's role own everything; privileges granted in
    ``src_db`` are kept (the roles exist: same cluster). On failure the ``dst_db`` this call
    created is dropped; one that existed before is never touched.
    """
    from liftgate.odoo.restore import maintenance_connection  # restore imports a lot

    if src_db == dst_db:
        raise UsageError("the source and the copy must be different databases")
    jobs = max(1, int(jobs))
    redactor = redactor or Redactor()
    redactor.add_value(env.password)
    started = time.monotonic()
    admin = maintenance_connection(env)
    try:
        if admin.info.dbname in (src_db, dst_db):
            raise UsageError(
                f"the maintenance connection is on {admin.info.dbname}; copying it needs "
                "another database to connect to (postgres or template1)"
            )
        info = server_info(admin)
        tools = PgTools.for_major(info.major)
        if not database_exists(admin, src_db):
            raise OperationError(f"cannot copy database {src_db}: it does not exist")
        tmp = Path(tempfile.mkdtemp(prefix=".lg-slotcopy-", dir=workdir))
        try:
            out = tmp / "db"
            dump_argv = [
                tools.path("pg_dump"),
                f"--dbname={env.conninfo(src_db)}",
                "--format=directory",
                f"--jobs={jobs}",
                "--no-owner",
                "--compress=0",
                f"--file={out}",
            ]
            child = env.child_env()
            tools.run(dump_argv, env=child, redactor=redactor, what=f"pg_dump of {src_db}")
            dumped = time.monotonic()
            _create_like(admin, src_db, dst_db)
            try:
                restore_argv = [
                    tools.path("pg_restore"),
                    f"--dbname={env.conninfo(dst_db)}",
                    "--exit-on-error",
                    "--no-owner",
                    f"--jobs={jobs}",
                    str(out),
                ]
                log: list[str] = []
                try:
                    tools.run(
                        restore_argv,
                        env=child,
                        redactor=redactor,
                        what=f"pg_restore into {dst_db}",
                        log=log,
                    )
                except OperationError as exc:
                    command = _failed_statement(log[-1] if log else "")
                    raise OperationError(
                        str(exc) + (f"; the statement was: {command}" if command else ""),
                        hint="the copy needs more than the env's own role may do",
                    ) from None
                _unfreeze_copy(admin, dst_db)
                with env.connect(dst_db, autocommit=True) as conn:
                    conn.execute("ANALYZE")
            except BaseException:
                _drop_quietly(admin, dst_db)
                raise
            restored = time.monotonic()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        size = database_size(admin, dst_db)
    finally:
        admin.close()
    return CopyReport(
        strategy="dump",
        src_db=src_db,
        dst_db=dst_db,
        seconds=round(time.monotonic() - started, 4),
        outage_seconds=0.0,
        bytes=size,
        detail={
            "jobs": jobs,
            "dump_seconds": round(dumped - started, 4),
            "restore_seconds": round(restored - dumped, 4),
            "pg_bin_dir": str(tools.bin_dir),
        },
    )


def _drop_quietly(admin: psycopg.Connection[Any], db: str) -> None:
    with contextlib.suppress(OperationError, psycopg.Error):
        drop_database(admin, db)


def drop_database(admin: psycopg.Connection[Any], db: str, *, attempts: int = 20) -> bool:
    """End ``db``'s sessions and drop it; False when it did not exist. ``admin``:
    autocommit, as ``db``'s owner, connected to another database."""
    _require_autocommit(admin)
    if db in _PROTECTED:
        raise UsageError(f"refusing to drop database {db}")
    if admin.info.dbname == db:
        raise UsageError(f"cannot drop database {db} through a connection to it")
    if not database_exists(admin, db):
        return False
    statement = sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(db))
    try:
        run_alone(admin, db, statement, failing=f"cannot drop database {db}", attempts=attempts)
    except psycopg.Error as exc:
        raise OperationError(f"cannot drop database {db}: {_first_line(exc)}") from None
    return True


def copy_filestore(src: Path, dst: Path) -> dict[str, Any]:
    """Rebuild filestore ``src`` at ``dst`` with hard links (copies across file systems).

    ``dst`` must not exist; the tree is built under a temporary sibling and renamed into
    place, so ``dst`` is complete or absent. Returns ``method`` ("link" or "copy"),
    ``files``, ``bytes`` and ``seconds``.
    """
    if not src.is_dir():
        raise OperationError(f"cannot copy filestore {src}: it is not a folder")
    if os.path.lexists(dst):
        raise OperationError(f"cannot copy the filestore to {dst}: it already exists")
    if not dst.parent.is_dir():
        raise OperationError(f"cannot copy the filestore to {dst}: {dst.parent} does not exist")
    started = time.monotonic()
    tmp = dst.parent / f".{dst.name}.lg-copy-{os.getpid()}-{time.time_ns()}"
    try:
        copied = link_or_copy_tree(src, tmp)
        rename_noreplace(tmp, dst)
        fsync_dir(dst.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {
        "method": copied.method,
        "files": copied.files,
        "bytes": copied.bytes,
        "seconds": round(time.monotonic() - started, 4),
    }
