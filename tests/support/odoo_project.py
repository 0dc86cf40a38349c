"""A liftgate project with Odoo-shaped environments on the test cluster."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from liftgate.sandbox.cluster import PgCluster
from liftgate.sandbox.odoo_sample import PopulateResult, create_schema, populate


@dataclass
class OdooProject:
    root: Path
    cluster: PgCluster
    role: str
    prod_db: str
    staging_db: str
    prod_filestore: Path
    staging_filestore: Path
    populated: PopulateResult

    def conninfo(self, db: str, *, as_role: bool = True) -> str:
        base = self.cluster.conninfo(db)
        return base.replace("user=postgres", f"user={self.role}") if as_role else base

    def admin(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(self.cluster.dsn, autocommit=True)


def make_role(cluster: PgCluster, *, superuser: bool = False) -> str:
    role = f"odoo_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(cluster.dsn, autocommit=True) as admin:
        admin.execute(
            sql.SQL("CREATE ROLE {} LOGIN CREATEDB {}").format(
                sql.Identifier(role), sql.SQL("SUPERUSER" if superuser else "NOSUPERUSER")
            )
        )
    return role


def config_text(p: OdooProject, extra: str = "", dsn_extra: str = "") -> str:
    host = p.cluster.conninfo("x").split("host=")[1].split()[0]
    port = p.cluster.conninfo("x").split("port=")[1].split()[0]
    return (
        '[project]\nroots = ["."]\n\n'
        f'[postgres]\ndsn = "host={host} port={port} user={p.role}{dsn_extra}"\n\n'
        f'[env.prod]\nrole = "production"\ndb = "{p.prod_db}"\n'
        f'filestore = "data/filestore/{p.prod_db}"\n\n'
        f'[env.staging]\nrole = "staging"\ndb = "{p.staging_db}"\n'
        f'filestore = "data/filestore/{p.staging_db}"\n' + extra
    )


def make_odoo_project(
    root: Path, cluster: PgCluster, *, partners: int = 300, attachments: int = 40
) -> OdooProject:
    role = make_role(cluster)
    prod_db = f"prod_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(cluster.dsn, autocommit=True) as admin:
        admin.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(prod_db), sql.Identifier(role)
            )
        )
    root.mkdir(parents=True, exist_ok=True)
    prod_fs = root / "data" / "filestore" / prod_db
    p = OdooProject(
        root=root,
        cluster=cluster,
        role=role,
        prod_db=prod_db,
        staging_db=f"{prod_db}_staging",
        prod_filestore=prod_fs,
        staging_filestore=root / "data" / "filestore" / f"{prod_db}_staging",
        populated=None,  # type: ignore[arg-type]
    )
    create_schema(p.conninfo(prod_db))
    p.populated = populate(p.conninfo(prod_db), prod_fs, partners=partners, attachments=attachments)
    (root / "liftgate.toml").write_text(config_text(p))
    return p
