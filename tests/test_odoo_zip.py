"""Odoo backup zips: export an artifact as one, import one (untrusted) as an artifact."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from liftgate.odoo.pgtools import PgTools
from liftgate.sandbox.cluster import PgCluster
from liftgate.sandbox.odoo_sample import table_snapshot
from support.odoo_project import OdooProject, make_odoo_project
from support.tree import cli_json, run_cli

ODOO_KEYS = {
    "odoo_dump",
    "db_name",
    "version",
    "version_info",
    "major_version",
    "pg_version",
    "modules",
}


@pytest.fixture
def odoo(tmp_path: Path, pg_cluster: PgCluster) -> Iterator[OdooProject]:
    p = make_odoo_project(tmp_path / "proj", pg_cluster)
    db = f"{p.prod_db}_imported"
    with open(p.root / "liftgate.toml", "a", encoding="utf-8") as fh:
        fh.write(
            # a production env: a restore into it is compared unneutralized with its source
            f'\n[env.imported]\nrole = "production"\ndb = "{db}"\n'
            f'filestore = "data/filestore/{db}"\n'
        )
    yield p
    # drop what the test made, so no autovacuum of it moves the cluster's WAL position later
    # (other tests compare it to detect an unchanged database)
    with p.admin() as conn:
        for (name,) in conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s", (p.prod_db + "%",)
        ).fetchall():
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(str(name))))


def _backup(p: OdooProject) -> str:
    code, out = cli_json(["odoo", "backup", "prod"], p.root)
    assert code == 0, out
    return str(out["artifact_id"])


def _export(p: OdooProject, artifact_id: str, name: str = "prod.zip") -> dict[str, Any]:
    code, out = cli_json(
        ["odoo", "export", artifact_id, "--format", "odoo-zip", "-o", name], p.root
    )
    assert code == 0, out
    return out


def _tools(p: OdooProject) -> PgTools:
    with p.admin() as conn:
        row = conn.execute("SHOW server_version_num").fetchone()
    assert row is not None
    return PgTools.for_major(int(str(row[0])) // 10000)


def _databases(p: OdooProject) -> set[str]:
    with p.admin() as conn:
        return {str(r[0]) for r in conn.execute("SELECT datname FROM pg_database").fetchall()}


def _store_fnames(conninfo: str) -> list[str]:
    with psycopg.connect(conninfo) as conn:
        rows = conn.execute(
            "SELECT DISTINCT store_fname FROM ir_attachment WHERE store_fname IS NOT NULL"
        ).fetchall()
    return [str(r[0]) for r in rows]


def _state(p: OdooProject) -> dict[str, Any]:
    """What an import may leave behind: databases, artifacts, temp files, import runs."""
    artifacts = p.root / ".liftgate" / "artifacts"
    imports = p.root / ".liftgate" / "imports"
    code, runs = cli_json(["runs", "list", "--limit", "500"], p.root)
    assert code == 0, runs
    return {
        "dbs": _databases(p),
        "artifacts": sorted(os.listdir(artifacts)) if artifacts.is_dir() else [],
        "imports": sorted(str(x) for x in imports.rglob("*")) if imports.is_dir() else [],
        "import_runs": [r["run_id"] for r in runs["runs"] if r["kind"] == "odoo.import"],
    }


def _write_zip(path: Path, members: Sequence[tuple[str | zipfile.ZipInfo, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for member, data in members:
            zf.writestr(member, data)
    return path


def _sha1_name(data: bytes) -> str:
    sha1 = hashlib.sha1(data, usedforsecurity=False).hexdigest()
    return f"filestore/{sha1[:2]}/{sha1}"


# ---------------------------------------------------------------- export
def test_export_is_what_odoos_database_manager_restores(odoo: OdooProject, tmp_path: Path) -> None:
    artifact_id = _backup(odoo)
    out = _export(odoo, artifact_id)
    zpath = odoo.root / "prod.zip"
    assert out["action"] == "odoo export" and out["status"] == "OK"
    assert out["output_path"] == str(zpath) and out["bytes"] == zpath.stat().st_size
    assert {"run_id", "message", "artifact_id"} <= set(out)
    assert stat.S_IMODE(zpath.stat().st_mode) == 0o600
    assert not [n for n in os.listdir(odoo.root) if n.endswith(".liftgate-export")]

    with zipfile.ZipFile(zpath) as zf:
        names = zf.namelist()
        manifest = json.loads(zf.read("manifest.json"))
        assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in zf.infolist())
    # Odoo's order: dump.sql, manifest.json, then the filestore
    assert names[:2] == ["dump.sql", "manifest.json"]
    assert len(names) == 2 + odoo.populated.files
    assert all(n.startswith("filestore/") for n in names[2:])

    # manifest.json: every key of Odoo's dump_db_manifest, with the right values
    with psycopg.connect(odoo.conninfo(odoo.prod_db)) as conn:
        modules: dict[str, str] = dict(
            conn.execute(
                "SELECT name, latest_version FROM ir_module_module WHERE state = 'installed'"
            ).fetchall()
        )
        row = conn.execute("SELECT current_setting('server_version_num')::int").fetchone()
    assert row is not None
    assert set(manifest) == ODOO_KEYS
    assert manifest["odoo_dump"] == "1"
    assert manifest["db_name"] == odoo.prod_db
    assert manifest["version"] == "17.0" and manifest["major_version"] == "17.0"
    assert manifest["version_info"] == [17, 0, 0, "final", 0, ""]
    assert manifest["pg_version"] == "%d.%d" % divmod(row[0] / 100, 100)  # noqa: UP031
    assert manifest["modules"] == modules and modules

    # restore it the way Odoo's database manager does, with ON_ERROR_STOP on
    unpacked = tmp_path / "odoo-restore"
    with zipfile.ZipFile(zpath) as zf:
        filestore = [m for m in zf.namelist() if m.startswith("filestore/")]
        zf.extractall(unpacked, ["dump.sql", *filestore])
    target = f"{odoo.prod_db}_odoo"
    with odoo.admin() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(target)))
    try:
        proc = subprocess.run(
            [
                _tools(odoo).path("psql"),
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                f"--dbname={odoo.cluster.conninfo(target)}",
                "-f",
                str(unpacked / "dump.sql"),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        assert table_snapshot(odoo.cluster.conninfo(target)) == table_snapshot(
            odoo.conninfo(odoo.prod_db)
        )
        fnames = _store_fnames(odoo.cluster.conninfo(target))
        assert fnames
        for fname in fnames:
            data = (unpacked / "filestore" / fname).read_bytes()
            assert hashlib.sha1(data, usedforsecurity=False).hexdigest() == fname.split("/")[1]
    finally:
        with odoo.admin() as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(target)))


def test_export_refuses_existing_output_and_paths_outside(odoo: OdooProject) -> None:
    artifact_id = _backup(odoo)
    _export(odoo, artifact_id)
    before = (odoo.root / "prod.zip").stat()
    code, out = cli_json(["odoo", "export", artifact_id, "-o", "prod.zip"], odoo.root)
    assert code == 2 and "already exists" in out["message"]
    assert (odoo.root / "prod.zip").stat().st_mtime_ns == before.st_mtime_ns
    code, out = cli_json(["odoo", "export", artifact_id, "-o", "/tmp/x.zip"], odoo.root)
    assert code == 2 and "outside the allowed roots" in out["message"]
    code, out = cli_json(["odoo", "export", artifact_id, "-o", ".liftgate/x.zip"], odoo.root)
    assert code == 2 and "state folder" in out["message"]
    code, out = cli_json(
        ["odoo", "export", artifact_id, "--format", "tar", "-o", "x.tar"], odoo.root
    )
    assert code == 2 and "format" in out["message"]
    code, out = cli_json(["odoo", "export", artifact_id, "-o", "prod.zip", "--force"], odoo.root)
    assert code == 0, out


def test_export_streams_a_large_dump(odoo: OdooProject, tmp_path: Path) -> None:
    """Peak RSS growth of the exporting process stays far below the size of dump.sql."""
    with psycopg.connect(odoo.conninfo(odoo.prod_db), autocommit=True) as conn:
        conn.execute("CREATE TABLE x_big (id serial PRIMARY KEY, payload text)")
        conn.execute(
            "INSERT INTO x_big (payload) SELECT md5(g::text) || md5((g * 7)::text) || "
            "md5((g * 13)::text) || md5((g * 31)::text) FROM generate_series(1, 300000) g"
        )
    artifact_id = _backup(odoo)
    script = (
        "import json, resource, sys\n"
        "from pathlib import Path\n"
        "from liftgate.engine.project import Project\n"
        "from liftgate.odoo.odoozip import export_zip\n"
        "project = Project.open(cwd=Path(sys.argv[1]))\n"
        "project.store\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "result = export_zip(project, sys.argv[2], 'big.zip')\n"
        "after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print(json.dumps({'before': before, 'after': after, 'dump': result.dump_sql_bytes}))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(odoo.root), artifact_id],
        cwd=odoo.root,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    usage = json.loads(proc.stdout.splitlines()[-1])
    growth = (usage["after"] - usage["before"]) * 1024  # ru_maxrss is in KiB on Linux
    assert usage["dump"] > 35 * 1024 * 1024, usage
    assert growth < 16 * 1024 * 1024 and growth < usage["dump"] / 8, usage
    with zipfile.ZipFile(odoo.root / "big.zip") as zf:
        assert zf.getinfo("dump.sql").file_size == usage["dump"]
        assert zf.testzip() is None


# ---------------------------------------------------------------- import
def test_import_of_an_exported_zip_verifies_and_restores(odoo: OdooProject) -> None:
    _export(odoo, _backup(odoo))
    before_dbs = _databases(odoo)
    code, out = cli_json(["odoo", "import", "prod.zip", "--env", "imported"], odoo.root)
    assert code == 0, out
    assert out["action"] == "odoo import" and out["status"] == "OK" and out["run_id"]
    assert {"message", "artifact_id", "artifact_path"} <= set(out)
    artifact_id = str(out["artifact_id"])
    assert Path(out["artifact_path"]).is_dir()
    code, ver = cli_json(["artifacts", "verify", artifact_id, "--read-data"], odoo.root)
    assert code == 0, ver
    code, shown = cli_json(["artifacts", "show", artifact_id], odoo.root)
    assert code == 0, shown
    manifest = shown["manifest"]
    assert manifest["source_env"] == {
        "name": "imported",
        "role": "production",
        "db": f"{odoo.prod_db}_imported",
    }
    assert manifest["filestore"]["count"] == odoo.populated.files
    assert manifest["filestore"]["missing"] == []
    assert manifest["odoo"]["database_uuid"] == odoo.populated.database_uuid
    # nothing of the import is left behind
    state = _state(odoo)
    assert state["dbs"] == before_dbs and state["imports"] == []
    assert not [a for a in state["artifacts"] if a.startswith(".tmp-")]

    code, res = cli_json(
        ["odoo", "restore", artifact_id, "--env", "imported", "--no-neutralize"], odoo.root
    )
    assert code == 0, res
    imported = odoo.conninfo(f"{odoo.prod_db}_imported")
    assert table_snapshot(imported) == table_snapshot(odoo.conninfo(odoo.prod_db))
    fs = odoo.root / "data" / "filestore" / f"{odoo.prod_db}_imported"
    fnames = _store_fnames(imported)
    assert fnames and all((fs / f).is_file() for f in fnames)


def test_import_of_a_pg_dump_custom_archive(odoo: OdooProject) -> None:
    dump = odoo.root / "prod.dump"
    proc = subprocess.run(
        [
            _tools(odoo).path("pg_dump"),
            "--format=custom",
            f"--dbname={odoo.conninfo(odoo.prod_db)}",
            f"--file={dump}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    code, out = cli_json(["odoo", "import", "prod.dump", "--env", "imported"], odoo.root)
    assert code == 0, out
    # an archive has no filestore: the attachments are reported missing, not invented
    assert any("missing" in w for w in out["warnings"])
    artifact_id = str(out["artifact_id"])
    code, ver = cli_json(["artifacts", "verify", artifact_id, "--read-data"], odoo.root)
    assert code == 0, ver
    code, res = cli_json(
        ["odoo", "restore", artifact_id, "--env", "imported", "--no-neutralize"], odoo.root
    )
    assert code == 0, res
    imported = odoo.conninfo(f"{odoo.prod_db}_imported")
    assert table_snapshot(imported) == table_snapshot(odoo.conninfo(odoo.prod_db))


def _symlink(name: str, mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (mode | 0o777) << 16
    return info


_BLOB = b"attachment bytes"


@pytest.mark.parametrize(
    ("member", "why"),
    [
        ("../evil", "'..' component"),
        ("filestore/../../evil", "'..' component"),
        ("/etc/evil", "absolute path"),
        (_symlink(_sha1_name(_BLOB), stat.S_IFLNK), "symbolic link"),
        (_symlink(_sha1_name(_BLOB), stat.S_IFIFO), "device, FIFO or socket"),
        ("filestore/ab/nothex", "not filestore/<xx>/<sha1>"),
        ("filestore/ab/" + "c" * 40, "not filestore/<xx>/<sha1>"),
        ("addons/evil.py", "not dump.sql, manifest.json"),
    ],
)
def test_bad_member_refused_and_nothing_changed(
    odoo: OdooProject, member: str | zipfile.ZipInfo, why: str
) -> None:
    name = member.filename if isinstance(member, zipfile.ZipInfo) else member
    _write_zip(odoo.root / "bad.zip", [("dump.sql", b"SELECT 1;\n"), (member, _BLOB)])
    before = _state(odoo)
    code, out = cli_json(["odoo", "import", "bad.zip", "--env", "imported"], odoo.root)
    assert code == 2, out
    assert repr(name) in out["message"] and why in out["message"], out["message"]
    assert "nothing was extracted" in out["message"]
    assert _state(odoo) == before


def test_copy_from_program_refused_naming_the_statement(odoo: OdooProject) -> None:
    dump = b"SET client_encoding = 'UTF8';\nCREATE TABLE x (a text);\nCOPY x FROM PROGRAM 'id';\n"
    _write_zip(odoo.root / "evil.zip", [("dump.sql", dump)])
    before = _state(odoo)
    code, out = cli_json(["odoo", "import", "evil.zip", "--env", "imported"], odoo.root)
    assert code == 2, out
    assert "dump.sql line 3" in out["message"], out["message"]
    assert "COPY x FROM PROGRAM 'id';" in out["message"]
    # nothing ran: no database was even created, no run recorded, no file left
    assert _state(odoo) == before


@pytest.mark.parametrize(
    ("dump", "shown"),
    [
        (b"SELECT 1;\n\\! touch /tmp/liftgate-pwned\n", "\\! touch /tmp/liftgate-pwned"),
        (b"SELECT lo_import('/etc/passwd');\n", "lo_import"),
        (b"ALTER SYSTEM SET work_mem = '1GB';\n", "ALTER SYSTEM"),
        (b"CREATE EXTENSION plpython3u;\n", "plpython3u"),
        (b"CREATE FUNCTION f() RETURNS int LANGUAGE plperlu AS $$ 1 $$;\n", "plperlu"),
        (b"SET standard_conforming_strings = off;\n", "standard_conforming_strings"),
    ],
)
def test_dangerous_sql_refused(odoo: OdooProject, dump: bytes, shown: str) -> None:
    _write_zip(odoo.root / "evil.zip", [("dump.sql", dump)])
    before = _state(odoo)
    code, out = cli_json(["odoo", "import", "evil.zip", "--env", "imported"], odoo.root)
    assert code == 2 and shown in out["message"], out
    assert _state(odoo) == before
    assert not Path("/tmp/liftgate-pwned").exists()


def test_syntax_error_in_the_middle_stops_and_leaves_nothing(odoo: OdooProject) -> None:
    _export(odoo, _backup(odoo))
    with zipfile.ZipFile(odoo.root / "prod.zip") as zf:
        members = [(i.filename, zf.read(i)) for i in zf.infolist()]
    lines = members[0][1].split(b"\n")
    assert members[0][0] == "dump.sql"
    candidates = [i for i, line in enumerate(lines) if line.startswith(b"ALTER TABLE ONLY")]
    at = candidates[len(candidates) // 2]
    lines.insert(at, b"THIS IS NOT SQL;")
    members[0] = ("dump.sql", b"\n".join(lines))
    _write_zip(odoo.root / "broken.zip", members)
    before = _state(odoo)
    code, out = cli_json(["odoo", "import", "broken.zip", "--env", "imported"], odoo.root)
    assert code == 8, out
    assert "syntax error" in out["message"] and f"dump.sql line {at + 1}" in out["message"], out
    after = _state(odoo)
    assert after["dbs"] == before["dbs"] and after["artifacts"] == before["artifacts"]
    assert after["imports"] == []
    code, runs = cli_json(["runs", "list"], odoo.root)
    failed = [r for r in runs["runs"] if r["kind"] == "odoo.import"]
    assert len(failed) == 1 and failed[0]["status"] == "failed"


def test_filestore_file_not_matching_its_name_is_reported(odoo: OdooProject) -> None:
    _export(odoo, _backup(odoo))
    with zipfile.ZipFile(odoo.root / "prod.zip") as zf:
        members = [(i.filename, zf.read(i)) for i in zf.infolist()]
    victim = members[2][0]
    members[2] = (victim, members[2][1] + b"tampered")
    _write_zip(odoo.root / "tampered.zip", members)
    # with the right bytes already in the blob store the artifact would simply use them
    shutil.rmtree(odoo.root / ".liftgate" / "artifacts")
    code, out = cli_json(["odoo", "import", "tampered.zip", "--env", "imported"], odoo.root)
    assert code == 0, out
    assert any(victim in w for w in out["warnings"]), out["warnings"]
    code, shown = cli_json(["artifacts", "show", str(out["artifact_id"])], odoo.root)
    assert shown["manifest"]["filestore"]["missing"] == [victim.removeprefix("filestore/")]
    code, out = cli_json(
        ["odoo", "import", "tampered.zip", "--env", "imported", "--strict"], odoo.root
    )
    assert code != 0 and "sha1" in out["message"], out


@pytest.mark.parametrize(
    ("point", "outcome"), [("import.load.after", "undone"), ("import.publish.after", "completed")]
)
def test_killed_import_is_cleaned_up_by_recover(
    odoo: OdooProject, point: str, outcome: str
) -> None:
    _export(odoo, _backup(odoo))
    before = _state(odoo)
    proc = run_cli(
        ["odoo", "import", "prod.zip", "--env", "imported", "--json"],
        odoo.root,
        {"LIFTGATE_FAILPOINTS": point},
    )
    assert proc.returncode == -9, proc.stdout + proc.stderr
    killed = _state(odoo)
    assert [d for d in killed["dbs"] - before["dbs"] if "_lgi_" in d]
    assert killed["imports"]
    code, out = cli_json(["recover"], odoo.root)
    assert code == 0, out
    assert [(r["kind"], r["result"]) for r in out["runs"]] == [("odoo.import", outcome)]
    after = _state(odoo)
    assert after["dbs"] == before["dbs"] and after["imports"] == []
    new = sorted(set(after["artifacts"]) - set(before["artifacts"]))
    assert not [a for a in new if a.startswith(".tmp-")]
    if outcome == "completed":
        assert len(new) == 1
        code, ver = cli_json(["artifacts", "verify", new[0], "--read-data"], odoo.root)
        assert code == 0, ver
    else:
        assert new == []


def test_superuser_role_or_non_backup_refused(odoo: OdooProject) -> None:
    _write_zip(odoo.root / "ok.zip", [("dump.sql", b"SELECT 1;\n")])
    (odoo.root / "notes.txt").write_text("not a backup\n")
    before = _state(odoo)
    code, out = cli_json(["odoo", "import", "notes.txt", "--env", "imported"], odoo.root)
    assert code == 2 and "neither an Odoo backup zip nor" in out["message"], out
    code, out = cli_json(["odoo", "import", "../outside.zip", "--env", "imported"], odoo.root)
    assert code == 2 and "outside the allowed roots" in out["message"], out
    toml = (odoo.root / "liftgate.toml").read_text()
    (odoo.root / "liftgate.toml").write_text(toml.replace(f"user={odoo.role}", "user=postgres"))
    code, out = cli_json(["odoo", "import", "ok.zip", "--env", "imported"], odoo.root)
    assert code == 3 and "superuser" in out["message"], out
    assert _state(odoo) == before
