"""The private PostgreSQL cluster helper used by database tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from liftgate.sandbox.cluster import PgCluster, start_cluster


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[PgCluster]:
    c = start_cluster(tmp_path / "pg")
    try:
        yield c
    finally:
        c.cleanup()


def test_cluster_serves_psql_and_psycopg(cluster: PgCluster) -> None:
    assert cluster.psql("select 1") == "1\n"
    assert f"port={cluster.port}" in cluster.dsn
    assert (cluster.socket_dir / f".s.PGSQL.{cluster.port}").is_socket()

    with psycopg.connect(cluster.dsn) as conn:
        assert conn.execute("show fsync").fetchone() == ("on",)
        assert conn.execute("show listen_addresses").fetchone() == ("",)
        conn.execute("create table t (id int primary key, name text not null)")
        conn.execute("insert into t values (1, 'one'), (2, 'two')")
    # Leaving the block committed the transaction: psql sees the rows.
    assert cluster.psql("select name from t order by id") == "one\ntwo\n"

    cluster.stop()
    assert not cluster.is_running()
    cluster.stop()  # idempotent

    cluster.start()  # restarts the same cluster: the committed rows survived
    assert cluster.psql("select count(*) from t") == "2\n"
    cluster.stop()
    assert not cluster.is_running()
