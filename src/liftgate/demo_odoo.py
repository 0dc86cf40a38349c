"""The Odoo part of ``liftgate demo``: back up and restore a sample environment.

It starts a private PostgreSQL cluster in the sandbox (as the ``postgres`` OS user when run
as root), creates an Odoo-shaped database with a real filestore, owned by an ordinary role,
and walks through backup → second backup → restore into staging (neutralized, new uuid) →
restore again (NOOP) → artifact and evidence verification.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from liftgate.artifacts.repository import ArtifactRepository
from liftgate.demo_deploy import deploy_tour, prepare_deploy
from liftgate.demo_promote import promote_tour
from liftgate.engine.evidence import verify_bundle
from liftgate.engine.project import Project
from liftgate.errors import IntegrityError
from liftgate.odoo.backup import backup
from liftgate.odoo.restore import restore
from liftgate.sandbox.cluster import start_cluster
from liftgate.sandbox.odoo_sample import create_schema, populate

__all__ = ["odoo_tour"]

ROLE = "liftgate_demo"


def _env_config(cluster_dsn: str, staging_extra: str) -> str:
    params = conninfo_to_dict(cluster_dsn)
    return (
        f'\n[postgres]\ndsn = "host={params["host"]} port={params["port"]} user={ROLE}"\n\n'
        '[env.prod]\nrole = "production"\ndb = "demo_prod"\n'
        'filestore = "data/filestore/demo_prod"\n\n'
        '[env.staging]\nrole = "staging"\ndb = "demo_staging"\n'
        'filestore = "data/filestore/demo_staging"\n' + staging_extra
    )


def odoo_tour(root: Path, say: Callable[[str], None]) -> None:
    say("9. an Odoo environment: a private PostgreSQL cluster and a sample database")
    cluster = start_cluster(root / "pg")
    try:
        with psycopg.connect(cluster.dsn, autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEDB").format(sql.Identifier(ROLE)))
            admin.execute(
                sql.SQL("CREATE DATABASE demo_prod OWNER {}").format(sql.Identifier(ROLE))
            )
        conninfo = make_conninfo(cluster.conninfo("demo_prod"), user=ROLE)
        create_schema(conninfo)
        sample = populate(
            conninfo, root / "data" / "filestore" / "demo_prod", partners=500, attachments=60
        )
        say(
            f"   demo_prod: {sample.partners} partners, {sample.files} filestore files, "
            f"PostgreSQL {cluster.bin_dir.parent.name}, role {ROLE} (not a superuser)"
        )
        params = conninfo_to_dict(cluster.dsn)
        setup = prepare_deploy(
            root, host=str(params["host"]), port=int(str(params["port"])), user=ROLE,
            db="demo_staging",
        )  # fmt: skip
        with open(root / "liftgate.toml", "a", encoding="utf-8") as fh:
            fh.write(_env_config(cluster.dsn, setup.config))
        project = Project.open(cwd=root)
        try:
            runs = _walk(project, say)
            runs += deploy_tour(project, setup, say)
            _verify_evidence(project, runs, say)
        finally:
            setup.stop()
            project.close()
        promote_tour(root, cluster, say)
    finally:
        cluster.cleanup()


def _walk(project: Project, say: Callable[[str], None]) -> list[str]:
    say("10. backup prod: one snapshot for pg_dump and for the attachment list")
    first = backup(project, "prod")
    say(f"   {first.status}: {first.message}")
    second = backup(project, "prod")
    say(f"   second backup: {second.message}")
    assert first.artifact_id is not None
    repo = ArtifactRepository(project.config.artifacts_dir)
    problems = repo.verify(first.artifact_id, read_data=True)
    say(f"   artifacts verify --read-data: {'OK' if not problems else problems[0]}")

    say("11. restore into staging: new database, verified, new uuid, neutralized, swapped in")
    res = restore(project, first.artifact_id, "staging")
    say(f"   {res.status}: {res.message}")
    with psycopg.connect(make_conninfo(_staging_dsn(project), dbname="demo_staging")) as conn:
        servers = conn.execute("SELECT smtp_host FROM ir_mail_server WHERE active").fetchall()
        crons = conn.execute("SELECT count(*) FROM ir_cron WHERE active").fetchone()
    active = crons[0] if crons else 0
    say(f"   staging mail goes to {[s[0] for s in servers]}; active crons: {active}")
    again = restore(project, first.artifact_id, "staging")
    say(f"   restore again: {again.status} ({again.message})")

    return [r for r in (first.run_id, second.run_id, res.run_id) if r]


def _verify_evidence(project: Project, runs: list[str], say: Callable[[str], None]) -> None:
    say("15. evidence of the Odoo runs")
    for run_id in runs:
        issues = verify_bundle(project.config.evidence_dir / run_id)
        say(f"   {run_id}: {'OK' if not issues else 'FAIL ' + issues[0]}")
        if issues:
            raise IntegrityError(f"the evidence of run {run_id} does not verify")
    say(f"   evidence: {project.config.evidence_dir} (liftgate demo --keep keeps the sandbox)")


def _staging_dsn(project: Project) -> str:
    dsn = project.config.settings.postgres.dsn
    assert dsn is not None
    return dsn
