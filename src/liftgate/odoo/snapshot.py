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

__all__ = ["STORE_FNAME", "SnapshotFacts", "read_facts"]

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


def read_counts(conn: psycopg.Connection[Any], facts: SnapshotFacts) -> None:
    """Exact row count of every user table."""
    tables = conn.execute(
        "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
        "AND n.nspname NOT LIKE 'pg_toast%%' AND n.nspname NOT LIKE 'pg_temp%%' ORDER BY 1, 2"
    ).fetchall()
    for schema, table in tables:
        row = conn.execute(
            sql.SQL("SELECT count(*) FROM {}.{}").format(
                sql.Identifier(schema), sql.Identifier(table)
            )
        ).fetchone()
        facts.tables[f"{schema}.{table}"] = int(row[0]) if row else 0


def read_facts(conn: psycopg.Connection[Any]) -> SnapshotFacts:
    facts = SnapshotFacts()
    read_odoo_facts(conn, facts)
    read_sequences(conn, facts)
    read_counts(conn, facts)
    return facts
