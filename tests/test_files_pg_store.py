"""File promotion with the PostgreSQL ops store (``[store] ops_dsn``), as several hosts use it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg

from support.tree import cli_json

CANARY = "PgCanary-9b2e41"


def _config(proj: Path, dsn: str) -> None:
    # the test cluster trusts local connections, so the password is never needed: it is a
    # canary that must not reach any file, table or output liftgate writes
    (proj / "liftgate.toml").write_text(
        f'[project]\nroots = ["."]\n[store]\nops_dsn = "{dsn} password={CANARY}"\n'
    )


def test_promote_rollback_with_postgres_store(proj_dir: Path, pg_dsn: str) -> None:
    _config(proj_dir, pg_dsn)
    (proj_dir / "docs/a.md").write_text("v1\n")
    for version in ("v2\n", "v3\n"):
        (proj_dir / "staged/a.md").write_text(version)
        code, out = cli_json(["promote", "staged/a.md", "--target", "docs/a.md"], proj_dir)
        assert code == 0, out
    assert not (proj_dir / ".liftgate/ops.sqlite").exists()
    code, out = cli_json(["rollback", "--target", "docs/a.md"], proj_dir)
    assert code == 0, out
    assert (proj_dir / "docs/a.md").read_text() == "v2\n"
    code, out = cli_json(["history", "verify"], proj_dir)
    assert code == 0 and out["count"] == 3
    with psycopg.connect(pg_dsn) as conn:
        runs = conn.execute("SELECT count(*) FROM ops.runs WHERE status = 'ok'").fetchone()
        assert runs is not None and runs[0] == 3
        heads = conn.execute("SELECT count, head FROM ops.history_heads").fetchall()
        assert heads[0][0] == 3
        dump = conn.execute(
            "SELECT string_agg(t::text, ' ') FROM (SELECT * FROM ops.runs) t"
        ).fetchone()
        steps = conn.execute(
            "SELECT string_agg(s::text, ' ') FROM (SELECT * FROM ops.steps) s"
        ).fetchone()
    assert dump is not None and steps is not None
    assert CANARY not in dump[0] and CANARY not in steps[0]
    # truncating the history is caught through the head kept in PostgreSQL
    history = proj_dir / ".liftgate/history.jsonl"
    history.write_text("".join(history.read_text().splitlines(keepends=True)[:-1]))
    code, out = cli_json(["history", "verify"], proj_dir)
    assert code != 0 and "records 3 lines" in out["message"]
    for dirpath, _, files in os.walk(proj_dir / ".liftgate"):
        for name in files:
            assert CANARY.encode() not in (Path(dirpath) / name).read_bytes()


def test_advisory_lock_blocks_second_promotion(proj_dir: Path, pg_dsn: str) -> None:
    _config(proj_dir, pg_dsn)
    (proj_dir / "docs/a.md").write_text("v1\n")
    (proj_dir / "staged/a.md").write_text("v2\n")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time, pathlib\n"
            "from liftgate.engine.project import Project\n"
            "from liftgate.engine.recovery import lock_name\n"
            f"p = Project.open(cwd=pathlib.Path({str(proj_dir)!r}))\n"
            f"with p.store.lock(lock_name({str(proj_dir / 'docs/a.md')!r})):\n"
            "    print('held', flush=True)\n"
            "    time.sleep(8)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        code, out = cli_json(["promote", "staged/a.md", "--target", "docs/a.md"], proj_dir)
        assert code == 4 and "holds the lock" in out["message"]
        assert CANARY not in str(out)
        code, out = cli_json(
            ["promote", "staged/a.md", "--target", "docs/a.md", "--wait", "30"], proj_dir
        )
        assert code == 0, out
    finally:
        holder.wait(30)
        if holder.stdout is not None:
            holder.stdout.close()


def test_crash_recovery_with_postgres_store(proj_dir: Path, pg_dsn: str) -> None:
    _config(proj_dir, pg_dsn)
    (proj_dir / "docs/a.md").write_text("v1\n")
    (proj_dir / "staged/a.md").write_text("v2\n")
    proc = subprocess.run(
        [sys.executable, "-m", "liftgate", "promote", "staged/a.md", "--target", "docs/a.md"],
        cwd=proj_dir,
        env={**os.environ, "LIFTGATE_FAILPOINTS": "promote.commit.switched"},
        capture_output=True,
        check=False,
    )
    assert proc.returncode == -9
    code, out = cli_json(["recover"], proj_dir)
    assert code == 0 and out["runs"][0]["result"] == "completed"
    assert (proj_dir / "docs/a.md").read_text() == "v2\n"
    code, out = cli_json(["history", "verify"], proj_dir)
    assert code == 0 and out["count"] == 1


def test_another_hosts_run_on_the_same_path_is_not_drift(proj_dir: Path, pg_dsn: str) -> None:
    """Hosts sharing the ops store may have files at the same path: only this host's runs
    say what liftgate last wrote here."""
    from liftgate.engine.project import Project
    from liftgate.store.base import RunRecord, utcnow

    _config(proj_dir, pg_dsn)
    target = proj_dir / "docs/a.md"
    target.write_text("v1\n")
    (proj_dir / "staged/a.md").write_text("v2\n")
    code, out = cli_json(["promote", "staged/a.md", "--target", "docs/a.md"], proj_dir)
    assert code == 0, out
    project = Project.open(cwd=proj_dir)
    try:
        now = utcnow()
        project.store.create_run(
            RunRecord(
                run_id="29991231-235959-000000",
                kind="files.promote",
                action="promote",
                target=str(target),
                host="another-host",
                state_dir="/elsewhere/.liftgate",
                status="ok",
                created_at="2999-12-31T23:59:59.000000Z",
                updated_at=now,
                plan={},
                result={"target_digest": "f" * 64, "target_fingerprint": "x"},
            )
        )
    finally:
        project.close()
    (proj_dir / "staged/a.md").write_text("v3\n")
    code, out = cli_json(["promote", "staged/a.md", "--target", "docs/a.md"], proj_dir)
    assert code == 0, out
    assert target.read_text() == "v3\n"
