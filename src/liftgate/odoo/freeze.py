"""Freeze a database read-only (blue during a promotion) and count the writes one accepted.

How a freeze works, and what it guarantees:

* ``ALTER DATABASE db SET default_transaction_read_only = on`` is stored in
  ``pg_db_role_setting`` (database ``db``, role 0) and applied by every session that starts
  after it committed. The database's owner may do it: ``default_transaction_read_only`` is
  a user-settable parameter, and a non-superuser owner may ``ALTER DATABASE ... SET`` any
  such parameter (checked on PostgreSQL 15 as an ordinary LOGIN CREATEDB owner role).
* Sessions that started before keep their own value, so ``freeze`` then ends every client
  session of ``db`` that started before the setting was committed (``pg_terminate_backend``
  with a wait, so a session is really gone when it returns). A transaction in flight in one
  of them is rolled back and its client sees the connection break: a write is refused or
  lost loudly, never silently. Sessions that started after the setting are read-only already
  and are left alone (Odoo's pool reconnects at once). A backend forked just before the
  setting may only show up in ``pg_stat_activity`` a moment later, so the sessions are
  looked up twice, a short pause apart.
* In every later transaction an ``INSERT``/``UPDATE``/``DELETE``/DDL fails with SQLSTATE
  25006 (``read_only_sql_transaction``); reads keep working. So do row locks (``SELECT
  ... FOR UPDATE`` / ``FOR NO KEY UPDATE``, also 25006), which is how Odoo's cron workers
  acquire a job: no cron runs on a frozen database. ``NOTIFY`` and advisory locks still
  work. ``freeze`` returns only after a new connection to ``db`` showed
  ``default_transaction_read_only = on``.
* What it does NOT stop: a session may switch itself back with ``SET
  default_transaction_read_only = off``, ``SET transaction_read_only = off`` or ``SET
  SESSION CHARACTERISTICS AS TRANSACTION READ WRITE`` — the freeze is a fence against
  ordinary writers, not a security boundary. Odoo never does this (it only sets the
  isolation level; its read-only cursors make a transaction *more* read-only). A role-level
  setting (``ALTER ROLE ... SET default_transaction_read_only = off``, with or without ``IN
  DATABASE``) overrides a database-level one; ``freeze`` notices it in its verification
  only for the role it connects as.
* Sessions of roles the caller may not signal (another role it is not a member of, a
  superuser) cannot be ended: ``freeze`` then raises and takes back the setting it added.
  Background workers (autovacuum...) are not client sessions and are left alone.
* The caller's own session is never ended; when ``admin`` is connected to ``db`` itself it
  stays writable (use a maintenance database, as ``restore.maintenance_connection`` does).

``freeze``, ``unfreeze`` and ``is_frozen`` are idempotent and safe to call from recovery:
``unfreeze`` of a database that is not frozen (or does not exist) changes nothing, unless
``force=True`` asks it to end the sessions anyway (recovery after a crash between the
``RESET`` and the end of the sessions, which may have left read-only sessions in a pool).

Counting writes (``write_counters`` / ``writes_since``): the sums of ``n_tup_ins``,
``n_tup_upd`` and ``n_tup_del`` of ``pg_stat_user_tables``. PostgreSQL 15's cumulative
statistics are not transactional and not immediate (measured on 15):

* A backend adds its counts to shared memory at the end of a transaction only if its last
  flush was at least 1 s earlier (``PGSTAT_MIN_INTERVAL``); otherwise they stay pending
  until its next transaction a second later or, when it goes idle, up to 10 s
  (``PGSTAT_IDLE_INTERVAL``, measured: 10.05 s). A session that writes right after it
  connected (the connection already flushed) is in that case.
* A backend flushes everything it has pending when it exits, before it leaves
  ``pg_stat_activity`` — also when it is ended by ``pg_terminate_backend(pid, timeout)``,
  before that call returns true (measured: the counts were in the very next reading). A
  client's own disconnect does not wait for its backend to exit: its counts arrive a few
  milliseconds later (under load, measured: not yet in a reading made right after
  ``close()``), once its pid is gone from ``pg_stat_activity``.
* ``pg_stat_force_next_flush()`` only affects the calling backend.
* Counts include rolled-back writes (a rolled-back UPDATE of 10 rows adds 10), and exclude
  writes refused by a read-only transaction (nothing was written).
* Within one transaction a reader sees a cached snapshot (``stats_fetch_consistency =
  cache``); ``write_counters`` clears it (``pg_stat_clear_snapshot()``) before reading.

Hence the exact way to count the writes a database accepted: end its writers' sessions
first — ``freeze`` does, waiting for each — then read. Without that, ``settle`` re-reads
until the counters stayed unchanged for that many seconds (11 s covers the idle flush).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from liftgate.errors import OperationError, UsageError, VerificationError

__all__ = [
    "FreezeInfo",
    "SessionsEnded",
    "end_sessions",
    "freeze",
    "is_frozen",
    "unfreeze",
    "write_counters",
    "writes_since",
]

PARAM = "default_transaction_read_only"
_TRUE = frozenset({"on", "true", "yes", "1", "t", "y"})
_WRITE_KEYS = ("n_tup_ins", "n_tup_upd", "n_tup_del")
_TERMINATE_WAIT_MS = 5000
_RECHECK_PAUSE = 0.1


@dataclass(frozen=True)
class SessionsEnded:
    """What :func:`end_sessions` did: sessions ended, and those it could not end."""

    ended: int
    not_ended: tuple[str, ...]  # "pid 123 (role x): why"
    seconds: float


@dataclass(frozen=True)
class FreezeInfo:
    db: str
    was_frozen: bool
    sessions_ended: int
    frozen_at: str  # ISO 8601, UTC: server time right after the setting was committed
    alter_seconds: float
    end_sessions_seconds: float
    verify_seconds: float
    seconds: float  # from the call to the verified freeze

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _require_autocommit(admin: psycopg.Connection[Any]) -> None:
    if not admin.autocommit:
        raise UsageError(
            "freezing needs an autocommit connection: a setting inside an open transaction "
            "is invisible to new sessions"
        )


def _db_oid(admin: psycopg.Connection[Any], db: str) -> int | None:
    row = admin.execute("SELECT oid FROM pg_database WHERE datname = %s", (db,)).fetchone()
    return None if row is None else int(row[0])


def end_sessions(
    admin: psycopg.Connection[Any],
    db: str,
    *,
    started_before: datetime | None = None,
    recheck: bool = True,
) -> SessionsEnded:
    """End the client sessions of ``db`` (not the caller's own), waiting for each to exit.

    ``started_before``: only sessions whose backend started at or before this instant (a
    server ``clock_timestamp()``). Sessions the caller may not signal are returned in
    ``not_ended``; nothing is raised for them. With ``recheck`` the sessions are looked up a
    second time after a short pause (a backend that was starting may appear late).
    """
    started = time.monotonic()
    ended = 0
    refused: dict[int, str] = {}
    for attempt in range(2 if recheck else 1):
        if attempt:
            time.sleep(_RECHECK_PAUSE)
        rows = admin.execute(
            "SELECT pid, usename, backend_start FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid() "
            # another role's session shows no backend_type; autovacuum workers have no user
            "AND (backend_type = 'client backend' "
            "OR (backend_type IS NULL AND usename IS NOT NULL)) "
            "AND (%s::timestamptz IS NULL OR backend_start IS NULL OR backend_start <= %s)",
            (db, started_before, started_before),
        ).fetchall()
        for pid, user, _ in rows:
            if pid in refused:
                continue
            try:
                row = admin.execute(
                    "SELECT pg_terminate_backend(%s, %s)", (pid, _TERMINATE_WAIT_MS)
                ).fetchone()
            except psycopg.errors.InsufficientPrivilege as exc:
                refused[pid] = f"pid {pid} (role {user}): {_first_line(exc)}"
                continue
            except psycopg.Error as exc:
                refused[pid] = f"pid {pid} (role {user}): {_first_line(exc)}"
                continue
            if row is not None and row[0]:
                ended += 1
            elif _alive(admin, pid):
                refused[pid] = (
                    f"pid {pid} (role {user}): still running {_TERMINATE_WAIT_MS} ms after "
                    "it was told to end"
                )
    return SessionsEnded(
        ended=ended,
        not_ended=tuple(refused[p] for p in sorted(refused)),
        seconds=round(time.monotonic() - started, 4),
    )


def _alive(admin: psycopg.Connection[Any], pid: int) -> bool:
    row = admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
    return row is not None


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def is_frozen(admin: psycopg.Connection[Any], db: str) -> bool:
    """True when ``db`` has ``default_transaction_read_only`` on for every role (role 0).

    Read from ``pg_db_role_setting`` (readable by every role). False for a missing database.
    """
    row = admin.execute(
        "SELECT s.setconfig FROM pg_db_role_setting s JOIN pg_database d "
        "ON d.oid = s.setdatabase WHERE d.datname = %s AND s.setrole = 0",
        (db,),
    ).fetchone()
    if row is None or row[0] is None:
        return False
    for entry in row[0]:
        name, _, value = str(entry).partition("=")
        if name.strip().lower() == PARAM:
            return value.strip().strip("'\"").lower() in _TRUE
    return False


def _alter(admin: psycopg.Connection[Any], db: str, action: sql.Composable) -> None:
    admin.execute(sql.SQL("ALTER DATABASE {} ").format(sql.Identifier(db)) + action)


_SET_ON = sql.SQL("SET {} = on").format(sql.Identifier(PARAM))
_RESET = sql.SQL("RESET {}").format(sql.Identifier(PARAM))


def _new_session_setting(admin: psycopg.Connection[Any], db: str) -> str:
    """``SHOW default_transaction_read_only`` in a brand-new session on ``db``."""
    params = admin.info.get_parameters()
    params["dbname"] = db
    password = admin.info.password
    kwargs: dict[str, Any] = {"autocommit": True, "connect_timeout": 15}
    if password:
        kwargs["password"] = password
    try:
        with psycopg.connect(make_conninfo(**params), **kwargs) as conn:
            row = conn.execute(sql.SQL("SHOW {}").format(sql.Identifier(PARAM))).fetchone()
    except psycopg.Error as exc:
        raise OperationError(
            f"cannot open a new session on database {db} to check its read-only setting: "
            f"{_first_line(exc)}"
        ) from None
    return "" if row is None else str(row[0])


def _server_now(admin: psycopg.Connection[Any]) -> datetime:
    row = admin.execute("SELECT clock_timestamp()").fetchone()
    assert row is not None
    value: datetime = row[0]
    return value


def freeze(admin: psycopg.Connection[Any], db: str) -> FreezeInfo:
    """Make every new transaction on ``db`` read-only; returns once verified in force.

    ``admin``: an autocommit connection, as ``db``'s owner (or a superuser), preferably to a
    maintenance database. Idempotent: freezing a frozen database ends the sessions that
    started before this call again and verifies again.
    Raises :class:`OperationError` when a session cannot be ended or the verification
    fails; the setting is then taken back if this call added it.
    """
    _require_autocommit(admin)
    started = time.monotonic()
    if _db_oid(admin, db) is None:
        raise OperationError(f"cannot freeze database {db}: it does not exist")
    was_frozen = is_frozen(admin, db)
    try:
        _alter(admin, db, _SET_ON)
    except psycopg.Error as exc:
        raise OperationError(
            f"cannot make database {db} read-only: {_first_line(exc)}",
            hint="ALTER DATABASE ... SET needs the database's owner (or a superuser)",
        ) from None
    alter_done = time.monotonic()
    committed_at = _server_now(admin)
    try:
        ended = end_sessions(admin, db, started_before=committed_at)
        if ended.not_ended:
            raise OperationError(
                f"database {db} is read-only for new sessions, but {len(ended.not_ended)} "
                f"older session(s) could not be ended and may still write: "
                f"{'; '.join(ended.not_ended[:3])}",
                hint="end them as a superuser (or stop the program that holds them) and "
                "freeze again",
            )
        ended_done = time.monotonic()
        seen = _new_session_setting(admin, db)
        if seen.lower() not in _TRUE:
            raise OperationError(
                f"database {db} was set read-only, but a new session sees "
                f"{PARAM} = {seen or 'nothing'}",
                hint=f"a role-level setting (ALTER ROLE ... SET {PARAM}) overrides the database's",
            )
    except BaseException:
        if not was_frozen:
            with contextlib.suppress(psycopg.Error):  # else the caller's unfreeze does
                _alter(admin, db, _RESET)
        raise
    done = time.monotonic()
    return FreezeInfo(
        db=db,
        was_frozen=was_frozen,
        sessions_ended=ended.ended,
        frozen_at=committed_at.astimezone(UTC).isoformat(),
        alter_seconds=round(alter_done - started, 4),
        end_sessions_seconds=round(ended_done - alter_done, 4),
        verify_seconds=round(done - ended_done, 4),
        seconds=round(done - started, 4),
    )


def unfreeze(admin: psycopg.Connection[Any], db: str, *, force: bool = False) -> None:
    """Take the freeze back: ``RESET`` the setting, end the sessions that started read-only.

    Nothing happens when ``db`` is not frozen (or does not exist), unless ``force``: then
    the sessions are ended anyway (recovery after a crash between the RESET and the end of
    the sessions, which may have left read-only sessions in a pool). Verified: a new session
    must see the setting off.
    """
    _require_autocommit(admin)
    if _db_oid(admin, db) is None:
        return
    frozen = is_frozen(admin, db)
    if not frozen and not force:
        return
    if frozen:
        try:
            _alter(admin, db, _RESET)
        except psycopg.Error as exc:
            raise OperationError(
                f"cannot make database {db} writable again: {_first_line(exc)}",
                hint="ALTER DATABASE ... RESET needs the database's owner (or a superuser)",
            ) from None
    ended = end_sessions(admin, db, started_before=_server_now(admin))
    if ended.not_ended:
        raise OperationError(
            f"database {db} is writable again for new sessions, but {len(ended.not_ended)} "
            f"older read-only session(s) could not be ended: {'; '.join(ended.not_ended[:3])}"
        )
    seen = _new_session_setting(admin, db)
    if seen.lower() in _TRUE:
        raise OperationError(
            f"database {db} was reset, but a new session still sees {PARAM} = {seen}",
            hint=f"a role-level setting (ALTER ROLE ... SET {PARAM}) keeps it read-only",
        )


# -- counting writes ------------------------------------------------------------------------


def _read_counters(conn: psycopg.Connection[Any]) -> dict[str, int]:
    conn.execute("SELECT pg_stat_clear_snapshot()")
    row = conn.execute(
        "SELECT coalesce(sum(n_tup_ins), 0)::bigint, coalesce(sum(n_tup_upd), 0)::bigint, "
        "coalesce(sum(n_tup_del), 0)::bigint FROM pg_stat_user_tables"
    ).fetchone()
    db = conn.execute(
        "SELECT datid::bigint, xact_commit, xact_rollback, "
        "coalesce(extract(epoch FROM stats_reset) * 1000000, 0)::bigint "
        "FROM pg_stat_database WHERE datname = current_database()"
    ).fetchone()
    assert row is not None
    ins, upd, dele = (int(v) for v in row)
    datid, commits, rollbacks, reset = (int(v) for v in db) if db else (0, 0, 0, 0)
    return {
        "n_tup_ins": ins,
        "n_tup_upd": upd,
        "n_tup_del": dele,
        "writes": ins + upd + dele,
        "xact_commit": commits,
        "xact_rollback": rollbacks,
        "datid": datid,
        "stats_reset_us": reset,
    }


def write_counters(
    conn: psycopg.Connection[Any],
    *,
    settle: float = 0.0,
    interval: float = 0.25,
    max_wait: float = 60.0,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, int]:
    """The write counters of the database ``conn`` is connected to.

    Keys: ``n_tup_ins``, ``n_tup_upd``, ``n_tup_del``, ``writes`` (their sum), ``xact_commit``
    and ``xact_rollback`` (``pg_stat_database``, which count read-only transactions too,
    this reader's among them), ``datid`` and ``stats_reset_us`` (to detect a reset).

    Another session's counts arrive late (see the module docstring). ``settle`` > 0 reads
    every ``interval`` seconds until the write counts stayed the same for ``settle`` seconds
    (at most ``max_wait`` seconds; then the last reading is returned). For an exact count,
    end the writers' sessions first (:func:`freeze` does).
    """
    reading = _read_counters(conn)
    if settle <= 0:
        return reading
    started = time.monotonic()
    stable_since = started
    while True:
        now = time.monotonic()
        if now - stable_since >= settle or now - started >= max_wait:
            return reading
        sleep(interval)
        fresh = _read_counters(conn)
        if any(fresh[k] != reading[k] for k in _WRITE_KEYS):
            stable_since = time.monotonic()
        reading = fresh


def writes_since(before: dict[str, int], after: dict[str, int]) -> int:
    """Rows written (inserted + updated + deleted) between two readings of one database.

    Raises :class:`VerificationError` when the readings cannot be compared: another database,
    statistics reset in between, or counts that went down (a table with counts was dropped).
    """
    if before.get("datid") != after.get("datid"):
        raise VerificationError(
            "the two write counter readings are of different databases; cannot count writes"
        )
    if before.get("stats_reset_us") != after.get("stats_reset_us"):
        raise VerificationError(
            "the database's statistics were reset between the two readings; cannot count writes"
        )
    deltas = {k: after[k] - before[k] for k in _WRITE_KEYS}
    if any(d < 0 for d in deltas.values()):
        raise VerificationError(
            "the write counters went down between the two readings (statistics of a dropped "
            "table, or a reset); cannot count writes"
        )
    return sum(deltas.values())
