"""Backing up an unchanged database again costs no dump: the previous dump is linked.

Inside the backup's own snapshot, liftgate proves that the database holds exactly what the
previous artifact of the env dumped: same database (oid) and schema digest, same sequence
values, same row count in every table, and no visible row whose ``xmin`` the previous
snapshot could not see (``snapshot.same_rows_since``). A row inserted or updated since
carries such an ``xmin``; a deleted one changes a count. Only then are the previous dump
files hard-linked into the new artifact instead of running ``pg_dump``. When anything
differs, or cannot be proven equal, the database is dumped as usual: a false "changed"
costs a dump, a false "unchanged" is impossible by construction.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from liftgate.artifacts.contract import ArtifactManifest, DumpFile
from liftgate.artifacts.repository import ArtifactRepository
from liftgate.errors import IntegrityError, LiftgateError
from liftgate.odoo.snapshot import SnapshotFacts, current_snapshot, same_rows_since, schema_digest

__all__ = ["SnapshotState", "link_previous_dump", "reusable_dump", "snapshot_state"]


@dataclass(frozen=True)
class SnapshotState:
    snapshot: str
    schema: str
    oid: int


def snapshot_state(conn: psycopg.Connection[Any]) -> SnapshotState:
    """Read inside the backup's REPEATABLE READ snapshot."""
    row = conn.execute("SELECT oid FROM pg_database WHERE datname = current_database()").fetchone()
    assert row is not None
    return SnapshotState(
        snapshot=current_snapshot(conn), schema=schema_digest(conn), oid=int(row[0])
    )


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
    if not same_rows_since(conn, before.xid_snapshot, prev.tables):
        return None
    facts.tables = dict(prev.tables)
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
