"""Has anything been committed in an env since liftgate restored it? (restore's NOOP rule)

A false "changed" is acceptable (the restore simply runs again); a false "unchanged" is
not. Two levels:

1. Cheap: the cluster's WAL insert position. Any commit that writes, anywhere in the
   cluster, moves it; if it has not moved, nothing changed.
2. Precise, when it has moved (other databases, autovacuum): recorded at restore time are
   the transaction-id horizon ``H`` (the oldest transaction still running then: anything
   committed afterwards has an xid at or after it), every table's row
   count, a digest of the schema, the sequences and the filestore's stat fingerprint. A
   row inserted or updated since carries an ``xmin`` assigned at or after ``H``: with ``N``
   transactions since (``N < 2**31``), its 32-bit ``xmin`` satisfies
   ``(xmin - H) mod 2**32 < N``; a deleted row changes a count; DDL changes the schema
   digest. Only very old frozen rows can alias into that window — a false "changed".
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import psycopg
from psycopg import sql

from liftgate.engine.digest import fingerprint as stat_fingerprint
from liftgate.odoo.env import OdooEnv

__all__ = ["TOUCHED_BY_RESTORE", "record", "schema_digest", "unchanged", "user_tables"]

# the tables a restore itself writes after verifying row counts (identity, neutralization)
TOUCHED_BY_RESTORE = (
    "ir_config_parameter",
    "ir_mail_server",
    "ir_cron",
    "ir_act_server",
    "ir_ui_view",
    "mail_template",
    "payment_provider",
    "fetchmail_server",
    "mail_notification_web_push",
    "mail_partner_device",
)

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
    return [
        (str(s), str(t))
        for s, t in conn.execute(
            "SELECT n.nspname, c.relname FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') "
            "AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
            "AND n.nspname NOT LIKE 'pg_t%%' ORDER BY 1, 2"
        ).fetchall()
    ]


def schema_digest(conn: psycopg.Connection[Any]) -> str:
    """A digest of every user relation, column, constraint, function and trigger."""
    row = conn.execute(_SCHEMA_DIGEST).fetchone()
    return str(row[0]) if row else ""


def _count(conn: psycopg.Connection[Any], schema: str, table: str) -> int:
    row = conn.execute(
        sql.SQL("SELECT count(*) FROM {}.{}").format(sql.Identifier(schema), sql.Identifier(table))
    ).fetchone()
    return int(row[0]) if row else 0


def _sequences(conn: psycopg.Connection[Any]) -> dict[str, int | None]:
    return {
        f"{s}.{n}": (int(v) if v is not None else None)
        for s, n, v in conn.execute(
            "SELECT schemaname, sequencename, last_value FROM pg_sequences ORDER BY 1, 2"
        ).fetchall()
    }


def _lsn(admin: psycopg.Connection[Any]) -> str:
    row = admin.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()
    return str(row[0]) if row else ""


def record(
    env: OdooEnv,
    admin: psycopg.Connection[Any],
    known_counts: dict[str, int],
    touched: Iterable[str] = TOUCHED_BY_RESTORE,
) -> dict[str, Any]:
    """The fingerprint of the env right after a restore. ``known_counts`` are row counts
    verified earlier in the run; only the tables in ``touched`` are counted again."""
    with env.connect() as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        # the oldest transaction still running: any row committed later carries an xmin at
        # or after it (a transaction already running may commit after this moment)
        row = conn.execute("SELECT txid_snapshot_xmin(txid_current_snapshot())").fetchone()
        horizon = int(row[0]) if row else 0
        counts = dict(known_counts)
        wanted = set(touched)
        for schema, table in user_tables(conn):
            key = f"{schema}.{table}"
            if table in wanted or key not in counts:
                counts[key] = _count(conn, schema, table)
        schema_row = conn.execute(_SCHEMA_DIGEST).fetchone()
        sequences = _sequences(conn)
        conn.rollback()
    return {
        "lsn": _lsn(admin),
        "horizon": horizon,
        "tables": counts,
        "schema": str(schema_row[0]) if schema_row else "",
        "sequences": sequences,
        "filestore": stat_fingerprint(env.filestore),
    }


def unchanged(env: OdooEnv, admin: psycopg.Connection[Any], recorded: dict[str, Any]) -> bool:
    """True only when nothing was committed in the env since ``recorded`` was taken."""
    if not recorded or stat_fingerprint(env.filestore) != recorded.get("filestore"):
        return False
    if recorded.get("lsn") and _lsn(admin) == recorded["lsn"]:
        return True
    horizon = int(recorded.get("horizon") or 0)
    if not horizon:
        return False
    with env.connect() as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        row = conn.execute("SELECT txid_snapshot_xmax(txid_current_snapshot())").fetchone()
        since = (int(row[0]) if row else horizon) - horizon
        if since < 0 or since >= 2**31:
            return False
        schema_row = conn.execute(_SCHEMA_DIGEST).fetchone()
        if not schema_row or str(schema_row[0]) != recorded.get("schema"):
            return False
        if _sequences(conn) != recorded.get("sequences"):
            return False
        tables = recorded.get("tables") or {}
        if sorted(f"{s}.{t}" for s, t in user_tables(conn)) != sorted(tables):
            return False
        for schema, table in user_tables(conn):
            found = conn.execute(
                sql.SQL(
                    "SELECT count(*), count(*) FILTER "
                    "(WHERE ((xmin::text::bigint - %s) & 4294967295) < %s) FROM {}.{}"
                ).format(sql.Identifier(schema), sql.Identifier(table)),
                (horizon % 2**32, since),
            ).fetchone()
            if found is None or int(found[0]) != tables[f"{schema}.{table}"] or int(found[1]):
                return False
        conn.rollback()
    return True
