"""What a backup reads inside the database's exported snapshot.

Everything here runs in the REPEATABLE READ transaction whose snapshot ``pg_dump`` uses, so
the attachment list, module versions, row counts and sequences describe exactly the data
that is dumped — even while users keep writing.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

__all__ = [
    "STORE_FNAME",
    "SnapshotFacts",
    "count_rows",
    "current_snapshot",
    "read_counts",
    "same_rows_since",
    "schema_digest",
    "user_tables",
]

STORE_FNAME = re.compile(r"^[0-9a-f]{2}/[0-9a-f]{40}$")


@dataclass
class SnapshotFacts:
    store_fnames: list[str] = field(default_factory=list)
    odd_fnames: list[str] = field(default_factory=list)  # not Odoo's <xx>/<sha1> form
    modules: dict[str, str | None] = field(default_factory=dict)
    database_uuid: str | None = None
    tables: dict[str, int] = field(default_factory=dict)
    sequences: dict[str, int] = field(default_factory=dict)

    @property
    def odoo_version(self) -> str | None:
        base = self.modules.get("base")
        if not base:
            return None
        parts = base.split(".")
        if len(parts) >= 2 and parts[0].isdigit():
            return f"{parts[0]}.{parts[1]}"
        return base

    @property
    def addons_hash(self) -> str | None:
        if not self.modules:
            return None
        lines = "".join(f"{k}={v}\n" for k, v in sorted(self.modules.items()))
        return hashlib.sha256(lines.encode()).hexdigest()


def _exists(conn: psycopg.Connection[Any], table: str) -> bool:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()
    return bool(row and row[0])


def read_odoo_facts(conn: psycopg.Connection[Any], facts: SnapshotFacts) -> None:
    """Attachments, installed modules and the database uuid (each only if its table exists)."""
    if _exists(conn, "ir_attachment"):
        rows = conn.execute(
            "SELECT DISTINCT store_fname FROM ir_attachment "
            "WHERE store_fname IS NOT NULL AND store_fname <> '' ORDER BY 1"
        ).fetchall()
        for (fname,) in rows:
            (facts.store_fnames if STORE_FNAME.match(fname) else facts.odd_fnames).append(fname)
    if _exists(conn, "ir_module_module"):
        facts.modules = {
            str(name): (str(version) if version is not None else None)
            for name, version in conn.execute(
                "SELECT name, latest_version FROM ir_module_module WHERE state = 'installed'"
            ).fetchall()
        }
    if _exists(conn, "ir_config_parameter"):
        row = conn.execute(
            "SELECT value FROM ir_config_parameter WHERE key = 'database.uuid'"
        ).fetchone()
        facts.database_uuid = str(row[0]) if row else None


def read_sequences(conn: psycopg.Connection[Any], facts: SnapshotFacts) -> None:
    """Sequence values. Sequences are not transactional: values read before pg_dump starts
    are a lower bound of what it dumps, which is what restore checks."""
    for schema, name, value in conn.execute(
        "SELECT schemaname, sequencename, last_value FROM pg_sequences ORDER BY 1, 2"
    ).fetchall():
        if value is not None:
            facts.sequences[f"{schema}.{name}"] = int(value)


_SCHEMA_DIGEST = """
SELECT md5(coalesce(string_agg(line, E'\\n' ORDER BY line), '')) FROM (
  SELECT format('%s.%s %s %s', n.nspname, c.relname, c.relkind,
                (SELECT string_agg(format('%s:%s:%s:%s', a.attname, a.atttypid, a.attnotnull,
                                          a.attisdropped), ',' ORDER BY a.attnum)
                   FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0)) AS line
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_t%%'
  UNION ALL
  SELECT format('con %s %s', conname, pg_get_constraintdef(oid)) FROM pg_constraint
   WHERE connamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)
  UNION ALL
  SELECT format('fn %s %s', p.oid::regprocedure, md5(p.prosrc)) FROM pg_proc p
   WHERE p.pronamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)
  UNION ALL
  SELECT format('tg %s %s', tgname, tgrelid::regclass) FROM pg_trigger WHERE NOT tgisinternal
) lines
"""


def user_tables(conn: psycopg.Connection[Any]) -> list[tuple[str, str]]:
    """(schema, table) of every user table, sorted."""
    return [
        (str(s), str(t))
        for s, t in conn.execute(
            "SELECT n.nspname, c.relname FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') "
            "AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
            "AND n.nspname NOT LIKE 'pg_t%%' ORDER BY 1, 2"
        ).fetchall()
    ]


def count_rows(conn: psycopg.Connection[Any], schema: str, table: str) -> int:
    row = conn.execute(
        sql.SQL("SELECT count(*) FROM {}.{}").format(sql.Identifier(schema), sql.Identifier(table))
    ).fetchone()
    return int(row[0]) if row else 0


def read_counts(conn: psycopg.Connection[Any], facts: SnapshotFacts) -> None:
    """Exact row count of every user table."""
    for schema, table in user_tables(conn):
        facts.tables[f"{schema}.{table}"] = count_rows(conn, schema, table)


def schema_digest(conn: psycopg.Connection[Any]) -> str:
    """A digest of every user relation, column, constraint, function and trigger."""
    row = conn.execute(_SCHEMA_DIGEST).fetchone()
    return str(row[0]) if row else ""


def current_snapshot(conn: psycopg.Connection[Any]) -> str:
    """``txid_current_snapshot()`` as text, ``xmin:xmax:xip,...`` (64-bit transaction ids)."""
    row = conn.execute("SELECT txid_current_snapshot()::text").fetchone()
    return str(row[0]) if row else ""


def same_rows_since(conn: psycopg.Connection[Any], earlier: str, counts: dict[str, int]) -> bool:
    """Does the current snapshot hold exactly the rows the ``earlier`` snapshot held?

    ``earlier`` is that snapshot (``xmin:xmax:xip,...``) and ``counts`` its row count per
    table. A visible row the earlier snapshot could not see has an xmin it did not see: at
    or after its ``xmax``, or one of its in-progress ``xip``. Against the 32-bit ``xmin``
    column that is tested as an offset from the earlier ``xmin`` inside the window of
    transactions since; a deleted row changes a count. Only very old frozen rows can alias
    into the window (a false "changed"); a false "same" cannot happen.
    """
    try:
        lo_text, hi_text, xip_text = earlier.split(":")
        lo, hi = int(lo_text), int(hi_text)
        in_progress = [int(x) - lo for x in xip_text.split(",") if x]
    except ValueError:
        return False
    now = current_snapshot(conn)
    window = int(now.split(":")[1]) - lo if now else -1
    if not 0 <= window < 2**31:
        return False
    tables = user_tables(conn)
    if sorted(f"{s}.{t}" for s, t in tables) != sorted(counts):
        return False
    for schema, table in tables:
        found = conn.execute(
            sql.SQL(
                "SELECT count(*), count(*) FILTER (WHERE off < %(window)s AND "
                "(off >= %(seen)s OR off = ANY(%(xip)s))) "
                "FROM (SELECT ((xmin::text::bigint - %(lo)s) & 4294967295) AS off "
                "FROM {}.{}) rows"
            ).format(sql.Identifier(schema), sql.Identifier(table)),
            {"window": window, "seen": hi - lo, "xip": in_progress, "lo": lo % 2**32},
        ).fetchone()
        if found is None or int(found[0]) != counts[f"{schema}.{table}"] or int(found[1]):
            return False
    return True
