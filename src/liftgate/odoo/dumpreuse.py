"""Backing up an unchanged database again costs no dump: the previous dump is linked.

Inside the backup's own snapshot, liftgate proves that the database holds exactly what the
previous artifact of the env dumped: same database (oid) and schema digest, same sequence
values, same row count in every table, and no visible row whose ``xmin`` was assigned at or
after the previous snapshot's horizon (``txid_snapshot_xmin``: any transaction that could
have been invisible to that snapshot). A row inserted or updated since carries such an
``xmin``; a deleted one changes a count. Only then are the previous dump files hard-linked
into the new artifact instead of running ``pg_dump``. When anything differs — or cannot be
proven equal — the database is dumped as usual: a false "changed" costs a dump, a false
"unchanged" is impossible by construction.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from liftgate.artifacts.contract import ArtifactManifest, DumpFile
from liftgate.artifacts.repository import ArtifactRepository
from liftgate.errors import IntegrityError, LiftgateError
from liftgate.odoo.fingerprint import schema_digest, user_tables
from liftgate.odoo.snapshot import SnapshotFacts

__all__ = ["SnapshotState", "link_previous_dump", "reusable_dump", "snapshot_state"]


@dataclass(frozen=True)
class SnapshotState:
    horizon: int
    schema: str
    oid: int


def snapshot_state(conn: psycopg.Connection[Any]) -> SnapshotState:
    """Read inside the backup's REPEATABLE READ snapshot."""
    row = conn.execute(
        "SELECT txid_snapshot_xmin(txid_current_snapshot()), "
        "(SELECT oid FROM pg_database WHERE datname = current_database())"
    ).fetchone()
    assert row is not None
    return SnapshotState(horizon=int(row[0]), schema=schema_digest(conn), oid=int(row[1]))


def _previous(repo: ArtifactRepository, env_name: str) -> ArtifactManifest | None:
    try:
        manifests = repo.list()
    except LiftgateError:
        return None
    mine = [m for m in manifests if m.source_env.name == env_name and m.db_dump.state]
    return mine[-1] if mine else None


def reusable_dump(
    conn: psycopg.Connection[Any],
    repo: ArtifactRepository,
    env_name: str,
    state: SnapshotState,
    facts: SnapshotFacts,
) -> ArtifactManifest | None:
    """The env's previous artifact when its dump equals this snapshot, else None.

    Fills ``facts.tables`` with the exact row counts when it had to count them."""
    prev = _previous(repo, env_name)
    if prev is None or prev.db_dump.state is None:
        return None
    before = prev.db_dump.state
    if (before.database_oid, before.schema_digest) != (state.oid, state.schema):
        return None
    if prev.sequences != facts.sequences:
        return None
    row = conn.execute("SELECT txid_snapshot_xmax(txid_current_snapshot())").fetchone()
    since = (int(row[0]) if row else 0) - before.xid_horizon
    if not 0 <= since < 2**31:
        return None
    tables = user_tables(conn)
    if sorted(f"{s}.{t}" for s, t in tables) != sorted(prev.tables):
        return None
    counts: dict[str, int] = {}
    for schema, table in tables:
        found = conn.execute(
            sql.SQL(
                "SELECT count(*), count(*) FILTER "
                "(WHERE ((xmin::text::bigint - %s) & 4294967295) < %s) FROM {}.{}"
            ).format(sql.Identifier(schema), sql.Identifier(table)),
            (before.xid_horizon % 2**32, since),
        ).fetchone()
        key = f"{schema}.{table}"
        if found is None or int(found[0]) != prev.tables[key] or int(found[1]):
            return None
        counts[key] = int(found[0])
    facts.tables = counts
    return prev


def link_previous_dump(
    repo: ArtifactRepository, prev: ArtifactManifest, target: Path
) -> list[DumpFile]:
    """Hard-link (or copy) the previous artifact's dump files into ``target``."""
    source = repo.path(prev.artifact_id) / "db"
    target.mkdir(mode=0o700)
    for entry in prev.db_dump.files:
        src, dst = source / entry.name, target / entry.name
        try:
            os.link(src, dst)
        except OSError:
            import shutil

            shutil.copyfile(src, dst)
        if dst.stat().st_size != entry.size:
            raise IntegrityError(
                f"dump file {entry.name} of artifact {prev.artifact_id} has the wrong size"
            )
    return list(prev.db_dump.files)
