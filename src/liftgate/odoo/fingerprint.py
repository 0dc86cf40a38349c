"""Has anything been committed in an env since liftgate restored it? (restore's NOOP rule)

A false "changed" is acceptable (the restore simply runs again); a false "unchanged" is
not. Two levels:

1. Cheap: the cluster's WAL insert position. Any commit that writes, anywhere in the
   cluster, moves it; if it has not moved, nothing changed.
2. Precise, when it has moved (other databases, autovacuum): recorded at restore time are
   the transaction snapshot, every table's row count, a digest of the schema, the
   sequences and the filestore's stat fingerprint; ``snapshot.same_rows_since`` finds any
   row that snapshot could not see (inserted or updated since), a count finds deletions,
   the digest finds DDL. Only very old frozen rows can alias — a false "changed".
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import psycopg

from liftgate.engine.digest import fingerprint as stat_fingerprint
from liftgate.odoo.env import OdooEnv
from liftgate.odoo.snapshot import (
    SnapshotFacts,
    count_rows,
    current_snapshot,
    read_sequences,
    same_rows_since,
    schema_digest,
    user_tables,
)

__all__ = ["TOUCHED_BY_RESTORE", "record", "unchanged"]

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
        snapshot = current_snapshot(conn)
        counts = dict(known_counts)
        wanted = set(touched)
        for schema, table in user_tables(conn):
            key = f"{schema}.{table}"
            if table in wanted or key not in counts:
                counts[key] = count_rows(conn, schema, table)
        digest = schema_digest(conn)
        facts = SnapshotFacts()
        read_sequences(conn, facts)
        conn.rollback()
    return {
        "lsn": _lsn(admin),
        "snapshot": snapshot,
        "tables": counts,
        "schema": digest,
        "sequences": facts.sequences,
        "filestore": stat_fingerprint(env.filestore),
    }


def unchanged(env: OdooEnv, admin: psycopg.Connection[Any], recorded: dict[str, Any]) -> bool:
    """True only when nothing was committed in the env since ``recorded`` was taken."""
    if not recorded or stat_fingerprint(env.filestore) != recorded.get("filestore"):
        return False
    if recorded.get("lsn") and _lsn(admin) == recorded["lsn"]:
        return True
    snapshot = str(recorded.get("snapshot") or "")
    if not snapshot:
        return False
    with env.connect() as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        facts = SnapshotFacts()
        read_sequences(conn, facts)
        same = (
            schema_digest(conn) == recorded.get("schema")
            and facts.sequences == recorded.get("sequences")
            and same_rows_since(conn, snapshot, recorded.get("tables") or {})
        )
        conn.rollback()
    return same
