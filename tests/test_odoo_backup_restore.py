"""Backup and restore of an Odoo-shaped environment on a real PostgreSQL cluster."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import psycopg
import pytest

from liftgate.sandbox.cluster import PgCluster
from liftgate.sandbox.odoo_sample import insert_attachment, sequence_values, table_snapshot
from support.odoo_project import OdooProject, make_odoo_project
from support.tree import cli_json, run_cli, snapshot, start_paused

NEUTRALIZED = {
    "ir_mail_server",
    "ir_cron",
    "ir_config_parameter",
    "ir_act_server",
    "mail_template",
    "payment_provider",
    "fetchmail_server",
    "ir_ui_view",
}


@pytest.fixture
def odoo(tmp_path: Path, pg_cluster: PgCluster) -> OdooProject:
    return make_odoo_project(tmp_path / "proj", pg_cluster)


def _backup(p: OdooProject, env: str = "prod") -> dict[str, object]:
    code, out = cli_json(["odoo", "backup", env], p.root)
    assert code == 0, out
    return out


def test_round_trip_into_staging(odoo: OdooProject) -> None:
    out = _backup(odoo)
    artifact_id = str(out["artifact_id"])
    assert Path(str(out["artifact_path"])).is_dir()
    code, shown = cli_json(["artifacts", "show", artifact_id], odoo.root)
    assert code == 0 and shown["manifest"]["format"] == "liftgate.artifact/v1"
    manifest = shown["manifest"]
    assert manifest["filestore"]["count"] == odoo.populated.files
    assert manifest["odoo"]["database_uuid"] == odoo.populated.database_uuid
    assert manifest["tables"]["public.res_partner"] >= odoo.populated.partners

    code, res = cli_json(["odoo", "restore", artifact_id, "--env", "staging"], odoo.root)
    assert code == 0, res
    before = table_snapshot(odoo.conninfo(odoo.prod_db))
    after = table_snapshot(odoo.conninfo(odoo.staging_db))
    assert set(before) == set(after)
    for table in before:
        if table not in NEUTRALIZED:
            assert before[table] == after[table], table
    seq_before = sequence_values(odoo.conninfo(odoo.prod_db))
    seq_after = sequence_values(odoo.conninfo(odoo.staging_db))
    assert set(seq_before) == set(seq_after)
    for name, value in seq_before.items():
        if name.removesuffix("_id_seq") not in NEUTRALIZED:  # neutralization inserts rows
            assert seq_after[name] == value, name
    with psycopg.connect(odoo.conninfo(odoo.staging_db)) as conn:
        fnames = [
            r[0]
            for r in conn.execute(
                "SELECT store_fname FROM ir_attachment WHERE store_fname IS NOT NULL"
            ).fetchall()
        ]
        uuid = conn.execute(
            "SELECT value FROM ir_config_parameter WHERE key='database.uuid'"
        ).fetchone()
        flag = conn.execute(
            "SELECT value FROM ir_config_parameter WHERE key='database.is_neutralized'"
        ).fetchone()
        servers = conn.execute(
            "SELECT smtp_host, smtp_port FROM ir_mail_server WHERE active"
        ).fetchall()
    assert fnames and all((odoo.staging_filestore / f).is_file() for f in fnames)
    assert uuid is not None and uuid[0] != odoo.populated.database_uuid
    assert flag is not None and flag[0].lower() == "true"
    assert servers == [("invalid", 1025)]
    # the filestore is made of hard links to the blob store
    one = odoo.staging_filestore / fnames[0]
    assert one.stat().st_nlink >= 2


def test_second_backup_stores_no_new_blob(odoo: OdooProject) -> None:
    first = _backup(odoo)
    second = _backup(odoo)
    ev = Path(str(second["evidence_path"])) / "backup.json"
    data = json.loads(ev.read_text())
    assert data["blobs_new"] == 0
    assert first["artifact_id"] != second["artifact_id"]
    for out in (first, second):
        code, ver = cli_json(
            ["artifacts", "verify", str(out["artifact_id"]), "--read-data"], odoo.root
        )
        assert code == 0, ver


def test_restore_over_existing_needs_force_then_rollback(odoo: OdooProject) -> None:
    artifact_id = str(_backup(odoo)["artifact_id"])
    with psycopg.connect(odoo.conninfo(odoo.prod_db), autocommit=True) as conn:
        conn.execute("INSERT INTO res_partner (name, active) VALUES ('written after backup', true)")
    code, out = cli_json(["odoo", "restore", artifact_id, "--env", "prod"], odoo.root)
    assert code == 3 and "without --force" in out["message"]
    code, out = cli_json(["odoo", "restore", artifact_id, "--env", "prod", "--force"], odoo.root)
    assert code == 0, out
    with psycopg.connect(odoo.conninfo(odoo.prod_db)) as conn:
        rows = conn.execute(
            "SELECT count(*) FROM res_partner WHERE name='written after backup'"
        ).fetchone()
        uuid = conn.execute(
            "SELECT value FROM ir_config_parameter WHERE key='database.uuid'"
        ).fetchone()
    assert rows == (0,)
    # production restoring its own backup keeps its identity and is not neutralized
    assert uuid is not None and uuid[0] == odoo.populated.database_uuid
    code, out = cli_json(["odoo", "restore", "--rollback", "prod"], odoo.root)
    assert code == 0, out
    with psycopg.connect(odoo.conninfo(odoo.prod_db)) as conn:
        rows = conn.execute(
            "SELECT count(*) FROM res_partner WHERE name='written after backup'"
        ).fetchone()
    assert rows == (1,)
    code, out = cli_json(["odoo", "restore", "--rollback", "prod"], odoo.root)
    assert code == 2 and "already rolled back" in out["message"]


def test_restore_same_artifact_again_is_noop(odoo: OdooProject) -> None:
    artifact_id = str(_backup(odoo)["artifact_id"])
    code, out = cli_json(["odoo", "restore", artifact_id, "--env", "staging"], odoo.root)
    assert code == 0, out
    # writes in another database of the cluster move the WAL: the precise check still says
    # nothing changed in staging
    with odoo.admin() as admin:
        admin.execute("CREATE TABLE IF NOT EXISTS lg_noise (x int)")
        admin.execute("INSERT INTO lg_noise SELECT generate_series(1, 1000)")
    code, out = cli_json(["odoo", "restore", artifact_id, "--env", "staging"], odoo.root)
    assert code == 0 and out["status"] == "NOOP", out
    for change in (
        "INSERT INTO res_partner (name, active) VALUES ('changed', true)",
        "UPDATE res_partner SET name = name || '!' WHERE id = (SELECT min(id) FROM res_partner)",
        "DELETE FROM mail_message WHERE id = (SELECT max(id) FROM mail_message)",
        "ALTER TABLE res_partner ADD COLUMN x_new integer",
    ):
        code, out = cli_json(
            ["odoo", "restore", artifact_id, "--env", "staging", "--force"], odoo.root
        )
        assert code == 0, out
        with psycopg.connect(odoo.conninfo(odoo.staging_db), autocommit=True) as conn:
            conn.execute(change)
        code, out = cli_json(["odoo", "restore", artifact_id, "--env", "staging"], odoo.root)
        assert code == 3 and "without --force" in out["message"], (change, out)


@pytest.mark.parametrize("where", ["manifest.json", "filestore.jsonl", "dump", "blob"])
def test_flipped_byte_refused(odoo: OdooProject, where: str) -> None:
    out = _backup(odoo)
    art = Path(str(out["artifact_path"]))
    if where == "dump":
        victim = max((art / "db").iterdir(), key=lambda p: p.stat().st_size)
    elif where == "blob":
        victim = next(p for p in (art.parent / "blobs").rglob("*") if p.is_file())
    else:
        victim = art / where
    victim.chmod(0o600)
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01
    victim.write_bytes(bytes(data))
    code, ver = cli_json(["artifacts", "verify", str(out["artifact_id"]), "--read-data"], odoo.root)
    assert code != 0 and ver["problems"]
    code, _res = cli_json(
        ["odoo", "restore", str(out["artifact_id"]), "--env", "staging"], odoo.root
    )
    assert code != 0
    with psycopg.connect(odoo.cluster.dsn) as conn:
        assert (
            conn.execute(
                "SELECT 1 FROM pg_database WHERE datname LIKE %s", (odoo.staging_db + "%",)
            ).fetchone()
            is None
        )
    assert not odoo.staging_filestore.exists()


def test_backup_under_concurrent_writers(odoo: OdooProject) -> None:
    stop = threading.Event()
    written: list[str] = []

    def writer() -> None:
        with psycopg.connect(odoo.conninfo(odoo.prod_db), autocommit=True) as conn:
            i = 0
            while not stop.is_set():
                written.append(
                    insert_attachment(conn, odoo.prod_filestore, os.urandom(512) + str(i).encode())
                )
                i += 1

    threads = [threading.Thread(target=writer) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        out = _backup(odoo)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert written
    code, res = cli_json(
        ["odoo", "restore", str(out["artifact_id"]), "--env", "staging"], odoo.root
    )
    assert code == 0, res
    with psycopg.connect(odoo.conninfo(odoo.staging_db)) as conn:
        fnames = [
            r[0]
            for r in conn.execute(
                "SELECT store_fname FROM ir_attachment WHERE store_fname IS NOT NULL"
            ).fetchall()
        ]
    assert all((odoo.staging_filestore / f).is_file() for f in fnames)


def test_superuser_role_refused(odoo: OdooProject) -> None:
    artifact_id = str(_backup(odoo)["artifact_id"])
    toml = (odoo.root / "liftgate.toml").read_text()
    (odoo.root / "liftgate.toml").write_text(toml.replace(f"user={odoo.role}", "user=postgres"))
    code, out = cli_json(["odoo", "restore", artifact_id, "--env", "staging"], odoo.root)
    assert code == 3 and "superuser" in out["message"]


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_password_canaries_never_written(
    odoo: OdooProject, tmp_path: Path, store: str, request: pytest.FixtureRequest
) -> None:
    dsn_canary, env_canary, conf_canary = "DsnCanary-1f2e", "EnvCanary-3d4c", "ConfCanary-5b6a"
    ops_dsn = request.getfixturevalue("pg_dsn") if store == "postgres" else None
    conf = odoo.root / "odoo.conf"
    conf.write_text(f"[options]\ndb_password = {conf_canary}\ndata_dir = {odoo.root / 'data'}\n")
    toml = (odoo.root / "liftgate.toml").read_text()
    toml = toml.replace(f'user={odoo.role}"', f'user={odoo.role} password={dsn_canary}"')
    toml += f'\n[env.confenv]\nrole = "dev"\ndb = "{odoo.prod_db}_conf"\nodoo_conf = "odoo.conf"\n'
    if ops_dsn is not None:
        toml += f'\n[store]\nops_dsn = "{ops_dsn}"\n'
    (odoo.root / "liftgate.toml").write_text(toml)
    env = {"PGPASSWORD": env_canary}
    outputs = []
    for args in (["odoo", "backup", "prod"], ["runs", "list"]):
        proc = run_cli([*args, "--json"], odoo.root, env)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        outputs.append(proc.stdout + proc.stderr)
    artifact_id = json.loads(outputs[0].splitlines()[0])["artifact_id"]
    for args in (
        ["odoo", "restore", artifact_id, "--env", "confenv"],
        ["odoo", "restore", artifact_id, "--env", "nope"],
    ):
        proc = run_cli([*args, "--json"], odoo.root, env)
        outputs.append(proc.stdout + proc.stderr)
    canaries = (dsn_canary, env_canary, conf_canary)
    for text in outputs:
        for c in canaries:
            assert c not in text
    for dirpath, _, files in os.walk(odoo.root / ".liftgate"):
        for name in files:
            data = (Path(dirpath) / name).read_bytes()
            for c in canaries:
                assert c.encode() not in data, (c, name)
    if ops_dsn is not None:
        with psycopg.connect(ops_dsn) as conn:
            runs = conn.execute("SELECT count(*) FROM ops.runs").fetchone()
            assert runs is not None and runs[0] >= 2
            for table in ("ops.runs", "ops.steps", "ops.history_heads"):
                row = conn.execute(f"SELECT coalesce(string_agg(t::text, ' '), '') FROM {table} t")  # noqa: S608 - fixed table names
                text = str(row.fetchone())
                for c in canaries:
                    assert c not in text, (c, table)


def test_env_untouched_when_restore_fails(odoo: OdooProject) -> None:
    artifact_id = str(_backup(odoo)["artifact_id"])
    code, out = cli_json(["odoo", "restore", artifact_id, "--env", "staging"], odoo.root)
    assert code == 0
    before_db = table_snapshot(odoo.conninfo(odoo.staging_db))
    before_fs = snapshot(odoo.staging_filestore)
    # a failure after the new database was filled: the restore step that verifies row counts
    proc = run_cli(
        ["odoo", "restore", artifact_id, "--env", "staging", "--force", "--json"],
        odoo.root,
        {"LIFTGATE_FAILPOINTS": "restore.identity.before"},
    )
    assert proc.returncode == -9
    code, out = cli_json(["recover"], odoo.root)
    assert code == 0 and out["runs"][0]["result"] == "undone", out
    assert table_snapshot(odoo.conninfo(odoo.staging_db)) == before_db
    assert snapshot(odoo.staging_filestore) == before_fs
    with psycopg.connect(odoo.cluster.dsn) as conn:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE %s", (odoo.staging_db + "%",)
            )
        ]
    assert names == [odoo.staging_db]


def test_postgres_stopped_mid_restore(odoo: OdooProject, tmp_path: Path) -> None:

    artifact_id = str(_backup(odoo)["artifact_id"])
    code, out = cli_json(["odoo", "restore", artifact_id, "--env", "staging"], odoo.root)
    assert code == 0, out
    before_db = table_snapshot(odoo.conninfo(odoo.staging_db))
    before_fs = snapshot(odoo.staging_filestore)
    proc, marker = start_paused(
        ["odoo", "restore", artifact_id, "--env", "staging", "--force", "--json"],
        odoo.root,
        "restore.pg_restore.before",
        tmp_path,
    )
    odoo.cluster.stop("immediate")
    try:
        marker.unlink()
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        odoo.cluster.start()
    assert proc.returncode not in (0, -9), stdout + stderr
    payload = json.loads(stdout.strip().splitlines()[-1])
    assert payload["status"] == "FAIL" and "Traceback" not in stderr
    assert "the live database was not touched" in payload["message"]
    code, out = cli_json(["recover"], odoo.root)
    assert code == 0 and out["runs"][0]["result"] == "undone", out
    assert table_snapshot(odoo.conninfo(odoo.staging_db)) == before_db
    assert snapshot(odoo.staging_filestore) == before_fs
    with psycopg.connect(odoo.cluster.dsn) as conn:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE %s", (odoo.staging_db + "%",)
            )
        ]
    assert names == [odoo.staging_db]


def test_dump_needing_superuser_is_refused_naming_the_statement(odoo: OdooProject) -> None:
    """A dump with an event trigger (superuser-only SQL) cannot be restored by the env's role."""
    with psycopg.connect(odoo.cluster.conninfo(odoo.prod_db), autocommit=True) as conn:
        conn.execute(
            "CREATE FUNCTION public.lg_hostile() RETURNS event_trigger LANGUAGE plpgsql "
            "AS $$ BEGIN RAISE NOTICE 'x'; END $$"
        )
        conn.execute(
            "CREATE EVENT TRIGGER lg_hostile ON ddl_command_start "
            "EXECUTE FUNCTION public.lg_hostile()"
        )
    artifact_id = str(_backup(odoo)["artifact_id"])
    code, out = cli_json(["odoo", "restore", artifact_id, "--env", "staging"], odoo.root)
    assert code != 0
    assert "EVENT TRIGGER" in out["message"], out["message"]
    with psycopg.connect(odoo.cluster.dsn) as conn:
        assert (
            conn.execute(
                "SELECT 1 FROM pg_database WHERE datname LIKE %s", (odoo.staging_db + "%",)
            ).fetchone()
            is None
        )


def test_recover_leaves_a_live_backup_alone(odoo: OdooProject, tmp_path: Path) -> None:

    proc, marker = start_paused(
        ["odoo", "backup", "prod", "--json"], odoo.root, "backup.dump.before", tmp_path
    )
    code, out = cli_json(["recover"], odoo.root)
    assert code == 0 and [r["result"] for r in out["runs"]] == ["skipped"], out
    marker.unlink()
    stdout, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0 and json.loads(stdout)["status"] == "OK"


def _backup_json(out: dict[str, object]) -> dict[str, object]:
    data = json.loads((Path(str(out["evidence_path"])) / "backup.json").read_text())
    assert isinstance(data, dict)
    return data


def test_unchanged_database_reuses_the_previous_dump(odoo: OdooProject) -> None:
    first = _backup(odoo)
    second = _backup(odoo)
    assert _backup_json(second)["reused_dump_of"] == first["artifact_id"]
    a, b = Path(str(first["artifact_path"])) / "db", Path(str(second["artifact_path"])) / "db"
    assert sorted(p.name for p in a.iterdir()) == sorted(p.name for p in b.iterdir())
    assert all((a / p.name).stat().st_ino == p.stat().st_ino for p in b.iterdir())
    code, ver = cli_json(
        ["artifacts", "verify", str(second["artifact_id"]), "--read-data"], odoo.root
    )
    assert code == 0, ver
    code, res = cli_json(
        ["odoo", "restore", str(second["artifact_id"]), "--env", "staging"], odoo.root
    )
    assert code == 0, res
    assert (
        table_snapshot(odoo.conninfo(odoo.staging_db))["res_partner"]
        == table_snapshot(odoo.conninfo(odoo.prod_db))["res_partner"]
    )


@pytest.mark.parametrize(
    "change",
    [
        "INSERT INTO res_partner (name, active) VALUES ('new', true)",
        "UPDATE res_partner SET name = name || '!' WHERE id = (SELECT min(id) FROM res_partner)",
        "DELETE FROM mail_message WHERE id = (SELECT max(id) FROM mail_message)",
        "ALTER TABLE res_partner ADD COLUMN x_new integer",
        "SELECT nextval('res_partner_id_seq')",
    ],
)
def test_any_change_means_a_new_dump(odoo: OdooProject, change: str) -> None:
    _backup(odoo)
    with psycopg.connect(odoo.conninfo(odoo.prod_db), autocommit=True) as conn:
        conn.execute(change)
    after = _backup(odoo)
    assert _backup_json(after)["reused_dump_of"] is None
    again = _backup(odoo)
    assert _backup_json(again)["reused_dump_of"] == after["artifact_id"]


def test_transaction_committed_after_the_snapshot_means_a_new_dump(odoo: OdooProject) -> None:
    with psycopg.connect(odoo.conninfo(odoo.prod_db)) as writer:
        writer.execute("INSERT INTO res_partner (name, active) VALUES ('in flight', true)")
        first = _backup(odoo)  # the insert is not committed: invisible to this snapshot
        writer.commit()
    second = _backup(odoo)
    assert _backup_json(second)["reused_dump_of"] is None, first
    code, res = cli_json(
        ["odoo", "restore", str(second["artifact_id"]), "--env", "staging"], odoo.root
    )
    assert code == 0, res
    with psycopg.connect(odoo.conninfo(odoo.staging_db)) as conn:
        row = conn.execute("SELECT count(*) FROM res_partner WHERE name = 'in flight'").fetchone()
    assert row == (1,)
