"""The Odoo-shaped database fixture: schema, data, filestore, snapshots, dump compressibility."""

from __future__ import annotations

import gzip
import hashlib
import re
import subprocess
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from liftgate.sandbox.cluster import PgCluster
from liftgate.sandbox.odoo_sample import (
    create_schema,
    insert_attachment,
    populate,
    sequence_values,
    store_path,
    table_snapshot,
)

ODOO_TABLES = {
    "ir_config_parameter",
    "ir_module_module",
    "ir_model_data",
    "ir_cron",
    "ir_mail_server",
    "ir_act_server",
    "ir_attachment",
    "ir_ui_view",
    "res_company",
    "res_partner",
    "res_users",
    "res_country",
}
MODULE_TABLES = {"mail_template", "mail_message", "payment_provider", "fetchmail_server"}


def _tables(dsn: str) -> set[str]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchall()
    return {r[0] for r in rows}


def _columns(dsn: str, table: str) -> dict[str, str]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'public' AND table_name = %s",
            (table,),
        ).fetchall()
    return {r[0]: r[1] for r in rows}


def test_schema_has_odoo_tables_and_types(pg_dsn: str) -> None:
    create_schema(pg_dsn)
    assert _tables(pg_dsn) == ODOO_TABLES | MODULE_TABLES
    cfg = _columns(pg_dsn, "ir_config_parameter")
    assert cfg["key"] == "character varying"
    assert cfg["value"] == "text"
    assert cfg["create_date"] == "timestamp without time zone"
    assert _columns(pg_dsn, "ir_attachment")["db_datas"] == "bytea"
    assert _columns(pg_dsn, "ir_act_server")["name"] == "jsonb"
    assert "state" in _columns(pg_dsn, "payment_provider")
    assert "is_live" not in _columns(pg_dsn, "payment_provider")
    assert "user" in _columns(pg_dsn, "fetchmail_server")  # a reserved word, quoted
    with psycopg.connect(pg_dsn) as conn:
        # ir_config_parameter.key is unique, as Odoo's ON CONFLICT (key) needs
        conn.execute("INSERT INTO ir_config_parameter (key, value) VALUES ('k', 'v')")
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("INSERT INTO ir_config_parameter (key, value) VALUES ('k', 'w')")


def test_options_leave_module_tables_out(pg_dsn: str) -> None:
    create_schema(pg_dsn, with_mail=False, with_payment=False, with_fetchmail=False)
    assert _tables(pg_dsn) == ODOO_TABLES


def test_payment_variant_is_live(pg_dsn: str) -> None:
    create_schema(pg_dsn, payment_variant="is_live")
    cols = _columns(pg_dsn, "payment_provider")
    assert cols["is_live"] == "boolean"
    assert "state" not in cols
    with pytest.raises(ValueError, match="payment_variant"):
        create_schema(pg_dsn, payment_variant="other")  # type: ignore[arg-type]


def test_populate_inserts_realistic_odoo_data(pg_dsn: str, tmp_path: Path) -> None:
    create_schema(pg_dsn)
    result = populate(pg_dsn, tmp_path / "fs", partners=300, attachments=60)
    assert result.elapsed_s < 2.0
    with psycopg.connect(pg_dsn) as conn:

        def one(query: str) -> Any:
            row = conn.execute(query).fetchone()
            assert row is not None
            return row[0]

        assert one("SELECT count(*) FROM res_partner") == 300 + 4
        assert one("SELECT count(DISTINCT name) FROM res_partner") > 200
        assert one("SELECT count(*) FROM mail_message") == result.messages == 300
        assert one("SELECT count(*) FROM ir_attachment WHERE store_fname IS NOT NULL") == 60
        assert one("SELECT count(*) FROM ir_attachment WHERE type = 'url'") == 2
        modules: dict[str, str] = dict(
            conn.execute(
                "SELECT name, latest_version FROM ir_module_module WHERE state = 'installed'"
            ).fetchall()
        )
        assert {"base", "web", "mail", "payment"} <= set(modules)
        assert modules == result.modules
        assert all(re.fullmatch(r"17\.0\.\d+\.\d+", v) for v in modules.values())
        params: dict[str, str] = dict(
            conn.execute("SELECT key, value FROM ir_config_parameter").fetchall()
        )
        assert params["database.uuid"] == result.database_uuid
        assert re.fullmatch(r"[0-9a-f-]{36}", params["database.secret"])
        assert params["web.base.url"].startswith("https://")
        assert one("SELECT count(*) FROM ir_mail_server WHERE active") == 2
        autovacuum = conn.execute(
            "SELECT c.active FROM ir_cron c JOIN ir_model_data d "
            "ON d.res_id = c.id AND d.model = 'ir.cron' "
            "WHERE d.module = 'base' AND d.name = 'autovacuum_job'"
        ).fetchall()
        assert autovacuum == [(True,)]
        assert one("SELECT count(*) FROM ir_cron WHERE active") >= 5
        assert one("SELECT count(*) FROM ir_act_server WHERE state = 'webhook'") == 2
        assert one("SELECT count(*) FROM fetchmail_server WHERE active") == 1
        assert one("SELECT count(*) FROM payment_provider WHERE state = 'enabled'") == 2
        assert one("SELECT count(*) FROM mail_template WHERE mail_server_id IS NOT NULL") == 3
        assert one("SELECT count(*) FROM res_users WHERE active") >= 2
        assert one("SELECT count(*) FROM res_partner WHERE comment IS NOT NULL") > 100


def test_every_attachment_file_exists_with_its_sha1(pg_dsn: str, tmp_path: Path) -> None:
    filestore = tmp_path / "filestore" / "db"
    create_schema(pg_dsn)
    result = populate(pg_dsn, filestore, partners=50, attachments=100, attachment_bytes=1000)
    with psycopg.connect(pg_dsn) as conn:
        rows = conn.execute(
            "SELECT store_fname, checksum, file_size, mimetype FROM ir_attachment "
            "WHERE type = 'binary' ORDER BY id"
        ).fetchall()
    assert [r[0] for r in rows] == list(result.store_fnames)
    for fname, checksum, size, _mimetype in rows:
        assert fname == f"{checksum[:2]}/{checksum}"
        content = store_path(filestore, fname).read_bytes()
        assert hashlib.sha1(content, usedforsecurity=False).hexdigest() == checksum
        assert len(content) == size
    # varied contents: text and binary, sizes around attachment_bytes, some shared files
    mimetypes = {r[3] for r in rows}
    assert len(mimetypes) >= 4
    sizes = [r[2] for r in rows]
    assert min(sizes) < 1000 < max(sizes)
    assert result.duplicate_attachments == 5
    distinct = {r[0] for r in rows}
    assert len(distinct) == result.files == 100 - 5
    on_disk = {p.relative_to(filestore).as_posix() for p in filestore.rglob("*") if p.is_file()}
    assert on_disk == distinct
    assert sum(store_path(filestore, f).stat().st_size for f in distinct) == (
        result.filestore_bytes
    )
    binary = [store_path(filestore, f).read_bytes() for f in distinct]
    assert any(b.startswith(b"Document ") for b in binary)
    assert any(b.startswith(b"%PDF") or b.startswith(b"\x89PNG") for b in binary)


def test_gc_checklist_markers(pg_dsn: str, tmp_path: Path) -> None:
    create_schema(pg_dsn)
    result = populate(pg_dsn, tmp_path / "fs", partners=5, attachments=10, gc_checklist=True)
    for fname in result.store_fnames:
        marker = store_path(tmp_path / "fs" / "checklist", fname)
        assert marker.is_file()
        assert marker.stat().st_size == 0


def test_same_seed_same_data(pg_cluster: PgCluster, pg_dsn: str, tmp_path: Path) -> None:
    create_schema(pg_dsn)
    first = populate(pg_dsn, tmp_path / "a", partners=100, attachments=20, seed=7)
    snap = table_snapshot(pg_dsn)
    with psycopg.connect(pg_dsn) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
    create_schema(pg_dsn)
    second = populate(pg_dsn, tmp_path / "b", partners=100, attachments=20, seed=7)
    assert table_snapshot(pg_dsn) == snap
    assert first.store_fnames == second.store_fnames
    assert first.database_uuid == second.database_uuid


def test_sequences_are_owned_and_past_the_highest_id(pg_dsn: str, tmp_path: Path) -> None:
    create_schema(pg_dsn)
    populate(pg_dsn, tmp_path / "fs", partners=40, attachments=10)
    seqs = sequence_values(pg_dsn)
    with psycopg.connect(pg_dsn) as conn:
        for table in ODOO_TABLES | MODULE_TABLES:
            row = conn.execute("SELECT pg_get_serial_sequence(%s, 'id')", (table,)).fetchone()
            assert row is not None and row[0] == f"public.{table}_id_seq"
            top = conn.execute(
                sql.SQL("SELECT coalesce(max(id), 0) FROM {}").format(sql.Identifier(table))
            ).fetchone()
            assert top is not None
            assert seqs[f"{table}_id_seq"] == top[0] + 1, table
        # an ORM-style insert (no id) takes the next id without conflict
        conn.execute("INSERT INTO res_country (name, code) VALUES ('{\"en_US\": \"X\"}', 'XX')")
    assert sequence_values(pg_dsn)["res_country_id_seq"] == seqs["res_country_id_seq"] + 1


def test_insert_attachment_like_odoo(pg_dsn: str, tmp_path: Path) -> None:
    filestore = tmp_path / "fs"
    create_schema(pg_dsn)
    populate(pg_dsn, filestore, partners=5, attachments=5)
    content = b"concurrent upload\n" * 3
    sha1 = hashlib.sha1(content, usedforsecurity=False).hexdigest()
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        fname = insert_attachment(conn, filestore, content)
        again = insert_attachment(conn, filestore, content)
        rows = conn.execute(
            "SELECT store_fname, checksum, file_size FROM ir_attachment WHERE checksum = %s",
            (sha1,),
        ).fetchall()
    assert fname == again == f"{sha1[:2]}/{sha1}"
    assert store_path(filestore, fname).read_bytes() == content
    assert rows == [(fname, sha1, len(content))] * 2


def test_table_snapshot_sees_every_change(pg_dsn: str, tmp_path: Path) -> None:
    create_schema(pg_dsn)
    populate(pg_dsn, tmp_path / "fs", partners=20, attachments=4)
    before = table_snapshot(pg_dsn)
    assert set(before) == ODOO_TABLES | MODULE_TABLES
    assert len(before["res_partner"]) == 24
    assert table_snapshot(pg_dsn) == before
    with psycopg.connect(pg_dsn) as conn:
        conn.execute("UPDATE res_partner SET city = 'Elsewhere' WHERE id = 10")
    after = table_snapshot(pg_dsn)
    assert after != before
    assert after["ir_config_parameter"] == before["ir_config_parameter"]


def test_plain_dump_compresses_like_real_data(
    pg_cluster: PgCluster, pg_dsn: str, tmp_path: Path
) -> None:
    create_schema(pg_dsn)
    populate(pg_dsn, tmp_path / "fs", partners=20000, attachments=50)
    dump = subprocess.run(
        [str(pg_cluster.bin_dir / "pg_dump"), "--no-owner", "-d", pg_dsn],
        capture_output=True,
        check=True,
        timeout=120,
    ).stdout
    assert len(dump) > 5_000_000
    ratio = len(dump) / len(gzip.compress(dump))
    assert 3 < ratio < 8, ratio
