"""PostgreSQL client programs and small server helpers.

``pg_dump`` refuses a server newer than itself and an old ``pg_restore`` cannot read a newer
archive, so liftgate picks the programs of the server's own major version from
``/usr/lib/postgresql/<major>/bin`` (or ``LIFTGATE_PG_BIN_<major>``). Every program runs from
an argv list (never a shell), its exit status is checked, and its error output is redacted
before it reaches a message.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

import psycopg
from psycopg import sql

from liftgate.engine.redaction import Redactor
from liftgate.errors import OperationError, UsageError

__all__ = ["PgTools", "ServerInfo", "run_db_name", "server_info", "terminate_sessions"]

PG_LIB = Path("/usr/lib/postgresql")
T = TypeVar("T")


@dataclass(frozen=True)
class ServerInfo:
    version: str  # "15.18"
    major: int
    superuser: bool
    user: str


def server_info(conn: psycopg.Connection[Any]) -> ServerInfo:
    row = conn.execute(
        "SELECT current_setting('server_version'), current_setting('server_version_num')::int,"
        " (SELECT rolsuper FROM pg_roles WHERE rolname = current_user), current_user"
    ).fetchone()
    assert row is not None
    version = str(row[0]).split()[0]
    return ServerInfo(
        version=version, major=int(row[1]) // 10000, superuser=bool(row[2]), user=row[3]
    )


@dataclass(frozen=True)
class PgTools:
    """The client programs that match one server major version."""

    bin_dir: Path
    major: int

    @classmethod
    def for_major(cls, major: int) -> PgTools:
        override = os.environ.get(f"LIFTGATE_PG_BIN_{major}")
        candidates = [Path(override)] if override else []
        candidates.append(PG_LIB / str(major) / "bin")
        for folder in candidates:
            if all((folder / p).is_file() for p in ("pg_dump", "pg_restore", "psql")):
                return cls(bin_dir=folder, major=major)
        found = (
            sorted(p.parent.name for p in PG_LIB.glob("*/bin/pg_dump")) if PG_LIB.is_dir() else []
        )
        raise UsageError(
            f"no PostgreSQL {major} client programs (pg_dump, pg_restore, psql) found in "
            f"{PG_LIB / str(major) / 'bin'}; installed majors: {', '.join(found) or 'none'}",
            hint=f"install postgresql-client-{major}, or set LIFTGATE_PG_BIN_{major}",
        )

    def path(self, program: str) -> str:
        return str(self.bin_dir / program)

    def version(self, program: str = "pg_dump") -> str:
        out = subprocess.run(
            [self.path(program), "--version"], capture_output=True, text=True, check=False
        )
        match = re.search(r"(\d+\.\d+(?:\.\d+)?)", out.stdout)
        return match.group(1) if match else out.stdout.strip()

    def run(
        self,
        argv: Sequence[str],
        *,
        env: dict[str, str],
        redactor: Redactor,
        what: str,
        cleanup: Path | None = None,
        log: list[str] | None = None,
    ) -> str:
        """Run ``argv``; raise OperationError naming the program's first error line on failure.

        ``cleanup`` (a partial output) is removed when the program fails.
        """
        proc = subprocess.run(list(argv), env=env, capture_output=True, text=True, check=False)
        if log is not None:
            log.append(redactor.text(proc.stderr))
        if proc.returncode != 0:
            if cleanup is not None and cleanup.is_dir():
                shutil.rmtree(cleanup, ignore_errors=True)
            elif cleanup is not None:
                cleanup.unlink(missing_ok=True)
            raise OperationError(
                f"{what} failed (exit {proc.returncode}): {redactor.text(first_error(proc.stderr))}"
            )
        return proc.stdout


def stream_stdout(
    argv: Sequence[str], errors: IO[bytes], consume: Callable[[IO[bytes]], T]
) -> tuple[T, int, str]:
    """Run ``argv`` (no PG* variables: it reads files, not a server), hand its stdout to
    ``consume`` chunk by chunk; returns (what ``consume`` returned, exit code, the start of
    its error output). The program is killed if ``consume`` fails."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    proc = subprocess.Popen(
        list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errors, env=env
    )
    assert proc.stdout is not None
    try:
        result = consume(proc.stdout)
    except BaseException:
        proc.kill()
        raise
    finally:
        proc.stdout.close()
        code = proc.wait()
    text = ""
    if code != 0:
        errors.seek(0)
        text = errors.read(64 * 1024).decode("utf-8", "replace")
    return result, code, text


def first_error(stderr: str) -> str:
    """The most telling line of a PostgreSQL program's error output."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in lines:
        if "error:" in line.lower() or "fatal:" in line.lower():
            return line
    return lines[0] if lines else "no error output"


def terminate_sessions(conn: psycopg.Connection[Any], dbname: str) -> int:
    """End every other session connected to ``dbname`` that this role may end; returns how
    many were ended. Sessions it may not end (a superuser's, the server's own autovacuum
    workers: CREATE/DROP/ALTER DATABASE stop those themselves) are left alone; the
    caller's next statement reports them if they are in its way."""
    pids = [
        int(r[0])
        for r in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid() "
            "AND backend_type IS DISTINCT FROM 'autovacuum worker'",
            (dbname,),
        ).fetchall()
    ]
    ended = 0
    for pid in pids:
        try:
            with conn.transaction():  # a savepoint: a refusal leaves the caller intact
                row = conn.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()
        except psycopg.errors.InsufficientPrivilege:
            continue
        ended += 1 if row and row[0] else 0
    return ended


def run_db_name(db: str, tag: str, run_id: str) -> str:
    """``<db>_<tag>_<12 digits of run_id>``, ``db`` shortened so the name fits PostgreSQL's
    63 bytes: the database a run keeps beside ``db`` (a copy, the previous one, ...)."""
    suffix = run_id.replace("-", "")[-12:]
    return f"{db[: 63 - len(suffix) - len(tag) - 2]}_{tag}_{suffix}"


def database_exists(conn: psycopg.Connection[Any], dbname: str) -> bool:
    return (
        conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
        is not None
    )


def rename_database(conn: psycopg.Connection[Any], old: str, new: str) -> None:
    """``ALTER DATABASE old RENAME TO new`` (``old`` without other sessions: see
    ``slotcopy.rename_alone`` to end them first)."""
    conn.execute(
        sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(old), sql.Identifier(new))
    )
