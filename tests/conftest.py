from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from liftgate.engine.project import Project
from liftgate.sandbox.cluster import PgCluster, start_cluster

CONFIG = """\
[project]
roots = ["."]
state_dir = ".liftgate"
"""


@pytest.fixture(scope="session")
def pg_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgCluster]:
    """One private PostgreSQL cluster (unix socket only) for the whole session."""
    cluster = start_cluster(tmp_path_factory.mktemp("pg"))
    try:
        yield cluster
    finally:
        cluster.cleanup()


@pytest.fixture
def pg_dsn(pg_cluster: PgCluster) -> Iterator[str]:
    """A fresh, empty database for one test."""
    dbname = f"t_{uuid.uuid4().hex}"
    with psycopg.connect(pg_cluster.dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    yield pg_cluster.conninfo(dbname)
    with psycopg.connect(pg_cluster.dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(dbname)))


@pytest.fixture
def proj_dir(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "liftgate.toml").write_text(CONFIG)
    (root / "docs").mkdir()
    (root / "staged").mkdir()
    return root


@pytest.fixture
def project(proj_dir: Path) -> Iterator[Project]:
    p = Project.open(cwd=proj_dir)
    try:
        yield p
    finally:
        p.close()


_skipped: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped:
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """No test may be skipped: a missing PostgreSQL, nginx or HAProxy is an install failure."""
    if _skipped and exitstatus == 0:
        print(f"\n{len(_skipped)} test(s) were skipped; liftgate's suite allows none:")
        for nodeid in _skipped:
            print(f"  {nodeid}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
