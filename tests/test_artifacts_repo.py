"""Blob store, artifact verification (every kind of damage), prune, and the artifacts CLI."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from liftgate.artifacts import repository as repo_mod
from liftgate.artifacts.blobs import BlobStore
from liftgate.artifacts.contract import ArtifactManifest, DumpFile
from liftgate.artifacts.repository import ArtifactRepository, dump_digest, index_digest
from liftgate.artifacts.retention import RetentionPolicy
from liftgate.cli import artifacts as artifacts_cli
from liftgate.engine.fsops import remove_path
from liftgate.errors import IntegrityError, LockedError, UsageError
from support.tree import snapshot


def sha1(data: bytes) -> str:
    return hashlib.sha1(data, usedforsecurity=False).hexdigest()


def flip(path: Path, offset: int | None = None) -> None:
    """XOR one byte with 0x01 (the smallest possible change)."""
    os.chmod(path, 0o600)
    data = bytearray(path.read_bytes())
    at = len(data) // 2 if offset is None else offset
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


def store_bytes(repo: ArtifactRepository, data: bytes) -> str:
    src = repo.root / f"src-{os.getpid()}"
    src.write_bytes(data)
    repo.blobs.put(src, sha1(data))
    src.unlink()
    return sha1(data)


def build(repo: ArtifactRepository, artifact_id: str, when: str, files: dict[str, bytes]) -> Path:
    """Write a synthetic artifact the way a backup does: tmp folder, blobs, manifest, publish."""
    tmp = repo.open_tmp(artifact_id)
    (tmp / "db").mkdir(mode=0o700)
    dump = {"toc.dat": b"TOC" * 50, "3001.dat.gz": os.urandom(300), "3002.dat.gz": b""}
    for name, data in dump.items():
        (tmp / "db" / name).write_bytes(data)
    dump_files = [
        DumpFile(name=n, size=len(d), sha256=hashlib.sha256(d).hexdigest()) for n, d in dump.items()
    ]
    lines = []
    for fname, data in sorted(files.items()):
        store_bytes(repo, data)
        lines.append(json.dumps({"fname": fname, "sha1": sha1(data), "size": len(data)}) + "\n")
    (tmp / "filestore.jsonl").write_text("".join(lines))
    db_dump = {"format": "directory", "path": "db", "size": sum(map(len, dump.values()))}
    db_dump |= {"sha256": dump_digest(dump_files), "files": dump_files}
    index = {"path": "filestore.jsonl", "sha256": index_digest(tmp / "filestore.jsonl")}
    stats = {"count": len(files), "bytes": sum(map(len, files.values()))}
    manifest = ArtifactManifest.model_validate(
        {
            "format": "liftgate.artifact/v1",
            "artifact_id": artifact_id,
            "created_at": when,
            "source_env": {"name": "prod", "role": "production", "db": "odoo"},
            "db_dump": {**db_dump, "pg_server_version": "16.4", "pg_dump_version": "16.4"},
            "filestore": {**stats, "index": index},
            "odoo": {"version": "17.0", "major_version": "17.0", "modules": {"base": "17.0.1"}},
            "tables": {"public.res_partner": 42, "public.ir_attachment": len(files)},
            "tool": {"name": "liftgate", "version": "0.1.0"},
        }
    )
    (tmp / "manifest.json").write_text(manifest.to_json())
    return repo.publish(tmp, artifact_id)


ATTACHMENTS = {"1a/1a2b": b"first attachment", "ff/ffee": b"second" * 1000, "00/x": b""}


@pytest.fixture
def repo(tmp_path: Path) -> ArtifactRepository:
    return ArtifactRepository(tmp_path / "artifacts")


@pytest.fixture
def art(repo: ArtifactRepository) -> Path:
    return build(repo, "art-1", "2026-11-21T10:00:00Z", ATTACHMENTS)


# blob store -------------------------------------------------------------------------------


def test_put_has_modes_and_second_put_copies_nothing(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    src = tmp_path / "att"
    src.write_bytes(b"hello odoo")
    name = sha1(b"hello odoo")
    assert not store.has(name)
    assert store.put(src, name) is True
    blob = tmp_path / "blobs" / name[:2] / name
    assert store.path(name) == blob and store.has(name) and blob.read_bytes() == b"hello odoo"
    assert stat.S_IMODE(blob.stat().st_mode) == 0o400
    for folder in (store.root, blob.parent):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    before = os.stat(blob)
    assert store.put(src, name) is False
    src.unlink()  # nothing is read either: the source may even be gone
    assert store.put(src, name) is False
    after = os.stat(blob)
    assert [after.st_ino, after.st_mtime_ns, after.st_ctime_ns] == [
        before.st_ino, before.st_mtime_ns, before.st_ctime_ns]  # fmt: skip
    assert store.size(name) == 10 and store.verify(name)
    assert list(store.iter_all()) == [name]


def test_put_refuses_bytes_that_do_not_match_the_name(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    src = tmp_path / "att"
    src.write_bytes(b"real bytes")
    wrong = sha1(b"other bytes")
    with pytest.raises(IntegrityError, match=str(src)):
        store.put(src, wrong)
    assert not store.has(wrong)
    assert os.listdir(store.path(wrong).parent) == []  # no temp file left behind


@pytest.mark.parametrize(
    "bad", ["../../../etc/passwd", "A" * 40, "a" * 39, "a" * 41, "", "../" + "a" * 37, "g" * 40]
)
def test_bad_blob_names_are_refused(tmp_path: Path, bad: str) -> None:
    store = BlobStore(tmp_path / "blobs")
    src = tmp_path / "att"
    src.write_bytes(b"x")
    for call in (
        lambda: store.path(bad),
        lambda: store.has(bad),
        lambda: store.put(src, bad),
        lambda: store.remove(bad),
        lambda: store.link_or_copy(bad, tmp_path / "out"),
    ):
        with pytest.raises(IntegrityError):
            call()
    assert not (tmp_path / "blobs").exists()


def test_verify_link_or_copy_iter_remove(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = BlobStore(tmp_path / "blobs")
    names = []
    for data in (b"one", b"two", b"three"):
        (tmp_path / "src").write_bytes(data)
        store.put(tmp_path / "src", sha1(data))
        names.append(sha1(data))
    (store.path(names[0]).parent / f".{names[0]}.123.tmp").write_bytes(b"unfinished")
    assert list(store.iter_all()) == sorted(names)
    assert store.link_or_copy(names[0], tmp_path / "linked") == "link"
    assert os.stat(tmp_path / "linked").st_ino == os.stat(store.path(names[0])).st_ino

    def no_link(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EXDEV, "cross-device link")

    monkeypatch.setattr(os, "link", no_link)
    assert store.link_or_copy(names[1], tmp_path / "copied") == "copy"
    assert (tmp_path / "copied").read_bytes() == b"two"
    flip(store.path(names[2]), 0)
    assert not store.verify(names[2])
    with pytest.raises(IntegrityError, match="damaged"):
        store.link_or_copy(names[2], tmp_path / "bad")
    assert not (tmp_path / "bad").exists()
    store.remove(names[1])
    store.remove(names[1])  # idempotent
    assert not store.has(names[1]) and not store.verify(names[1])
    with pytest.raises(IntegrityError, match="missing"):
        store.size(names[1])


def test_concurrent_puts_of_one_blob(tmp_path: Path) -> None:
    data = os.urandom(3 << 20)
    (tmp_path / "src").write_bytes(data)
    name, go = sha1(data), tmp_path / "go"
    code = (
        "import sys, time, pathlib\n"
        "from liftgate.artifacts.blobs import BlobStore\n"
        "go = pathlib.Path(sys.argv[1])\n"
        "while not go.exists(): time.sleep(0.001)\n"
        "s = BlobStore(pathlib.Path(sys.argv[2]))\n"
        "print(s.put(pathlib.Path(sys.argv[3]), sys.argv[4]))\n"
    )
    args = [str(go), str(tmp_path / "blobs"), str(tmp_path / "src"), name]
    procs = [
        subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, text=True)
        for _ in range(8)
    ]
    go.touch()
    outputs = [p.communicate(timeout=60)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    assert "True" in outputs and set(outputs) <= {"True", "False"}
    store = BlobStore(tmp_path / "blobs")
    assert store.verify(name) and os.listdir(store.path(name).parent) == [name]


# verify -----------------------------------------------------------------------------------


def test_clean_artifact_verifies_and_lists(repo: ArtifactRepository, art: Path) -> None:
    assert repo.verify("art-1") == [] and repo.verify("art-1", read_data=True) == []
    assert [m.artifact_id for m in repo.list()] == ["art-1"]
    assert [e.fname for e in repo.read_index("art-1")] == sorted(ATTACHMENTS)
    for bad in ("../x", "blobs", ".tmp-art-1"):
        with pytest.raises(UsageError, match="not a valid artifact id"):
            repo.load(bad)
    with pytest.raises(UsageError, match="there is no artifact nope"):
        repo.verify("nope")


def test_any_flipped_byte_is_found_with_read_data(repo: ArtifactRepository, art: Path) -> None:
    files = [p for p in art.rglob("*") if p.is_file() and p.stat().st_size]
    files += [repo.blobs.path(e.sha1) for e in repo.read_index("art-1") if e.size]
    assert len(files) == 7  # manifest, seal, index, 2 non-empty dump files, 2 non-empty blobs
    for path in files:
        flip(path)
        assert repo.verify("art-1", read_data=True), f"a flipped byte in {path} went unseen"
        flip(path)
        assert repo.verify("art-1", read_data=True) == []


def _offset_of(needle: bytes) -> Callable[[Path], None]:
    return lambda art: flip(
        art / "manifest.json", (art / "manifest.json").read_bytes().index(needle)
    )


def _unlink(rel: str) -> Callable[[Path], None]:
    return lambda art: (art / rel).unlink()


def _truncate(rel: str) -> Callable[[Path], None]:
    return lambda art: os.truncate(art / rel, 10)


def _blob(action: str) -> Callable[[Path], None]:
    def damage(art: Path) -> None:
        blob = ArtifactRepository(art.parent).blobs.path(sha1(ATTACHMENTS["ff/ffee"]))
        if action == "remove":
            blob.unlink()
        elif action == "truncate":
            os.truncate(blob, 5)
        else:
            flip(blob)

    return damage


DAMAGE: dict[str, tuple[Callable[[Path], None], bool]] = {
    # name: (damage, found without read_data)
    "manifest middle byte": (lambda art: flip(art / "manifest.json"), True),
    "manifest table count": (_offset_of(b"42"), True),
    "manifest first byte": (lambda art: flip(art / "manifest.json", 0), True),
    "manifest seal": (lambda art: flip(art / "manifest.json.sha256", 3), True),
    "manifest seal missing": (_unlink("manifest.json.sha256"), True),
    "index byte": (lambda art: flip(art / "filestore.jsonl"), True),
    "index missing": (_unlink("filestore.jsonl"), True),
    "dump byte": (lambda art: flip(art / "db/3001.dat.gz"), False),
    "dump truncated": (_truncate("db/toc.dat"), True),
    "dump file missing": (_unlink("db/3002.dat.gz"), True),
    "dump file added": (lambda art: (art / "db/extra.dat").touch(), True),
    "dump folder missing": (lambda art: remove_path(art / "db"), True),
    "blob byte": (_blob("flip"), False),
    "blob truncated": (_blob("truncate"), True),
    "blob missing": (_blob("remove"), True),
}


@pytest.mark.parametrize("name", list(DAMAGE))
def test_damage_is_found(repo: ArtifactRepository, art: Path, name: str) -> None:
    damage, quick = DAMAGE[name]
    damage(art)
    assert repo.verify("art-1", read_data=True), name
    assert bool(repo.verify("art-1")) is quick, name


def _reseal(art: Path, top: dict[str, Any], filestore: dict[str, Any]) -> None:
    """Rewrite the manifest with changes, and a matching seal (only the contents disagree)."""
    raw = json.loads((art / "manifest.json").read_text())
    raw.update(top)
    raw["filestore"].update(filestore)
    raw = {k: v for k, v in raw.items() if v is not None}
    (art / "manifest.json").write_text(json.dumps(raw))
    (art / "manifest.json.sha256").write_bytes(repo_mod._seal_line(art / "manifest.json"))


def test_manifest_is_checked_against_schema_model_and_contents(
    repo: ArtifactRepository, art: Path
) -> None:
    _reseal(art, {"extra": 1}, {})
    problems = repo.verify("art-1")
    assert any("JSON Schema" in p for p in problems) and any("model" in p for p in problems)
    _reseal(art, {"extra": None}, {"count": 4})
    assert repo.verify("art-1") == ["filestore.jsonl has 3 entries, filestore.count is 4"]
    _reseal(art, {"artifact_id": "x"}, {"count": 3})
    assert repo.verify("art-1") == ["manifest.json names the artifact x"]


@pytest.mark.parametrize(
    "line",
    [
        "not json\n",
        '{"fname": "../escape", "sha1": "' + "a" * 40 + '", "size": 1}\n',
        '{"fname": "a", "sha1": "' + "A" * 40 + '", "size": 1}\n',
        '{"fname": "a", "sha1": "' + "a" * 40 + '", "size": -1}\n',
        '{"fname": "a", "sha1": "' + "a" * 40 + '", "size": 1, "more": 1}\n',
        '{"fname": "aa/first", "sha1": "' + "a" * 40 + '", "size": 1}\n',  # breaks the order
    ],
)
def test_malformed_index_line(repo: ArtifactRepository, art: Path, line: str) -> None:
    (art / "filestore.jsonl").write_text((art / "filestore.jsonl").read_text() + line)
    with pytest.raises(IntegrityError, match="line 4 of"):
        repo.read_index("art-1")
    assert any("line 4 of" in p for p in repo.verify("art-1"))


def test_digest_helpers() -> None:
    files = [
        DumpFile(name="b", size=1, sha256="b" * 64),
        DumpFile(name="a", size=1, sha256="c" * 64),
    ]
    text = f"{'b' * 64}  b\n{'c' * 64}  a\n"
    assert dump_digest(files) == hashlib.sha256(text.encode()).hexdigest()
    assert dump_digest(list(reversed(files))) == dump_digest(files)


def test_publish_and_list_rules(repo: ArtifactRepository, art: Path) -> None:
    with pytest.raises(UsageError, match="already exists"):
        repo.open_tmp("art-1")
    (repo.root / "unfinished").mkdir()
    repo.open_tmp("in-progress")
    older = build(repo, "zz-older", "2026-01-01T00:00:00.5Z", {})
    assert [m.artifact_id for m in repo.list()] == ["zz-older", "art-1"]
    assert stat.S_IMODE(older.stat().st_mode) == 0o700
    repo.delete("zz-older")
    assert not older.exists() and [m.artifact_id for m in repo.list()] == ["art-1"]


# prune ------------------------------------------------------------------------------------

DATES = {
    "a01": "2026-08-05T10:00:00Z",
    "a02": "2026-08-20T10:00:00Z",
    "a03": "2026-09-10T10:00:00Z",
    "a04": "2026-09-25T10:00:00Z",
    "a05": "2026-10-05T10:00:00Z",
    "a06": "2026-10-28T10:00:00Z",
    "a07": "2026-11-10T10:00:00Z",
    "a08": "2026-11-16T10:00:00Z",
    "a09": "2026-11-18T10:00:00Z",
    "a10": "2026-11-20T08:00:00Z",
    "a11": "2026-11-20T20:00:00Z",
    "a12": "2026-11-21T10:00:00Z",
}
POLICY = RetentionPolicy(keep_daily=2, keep_weekly=2, keep_monthly=3)
KEPT = {
    "a12": ["daily 2026-11-21", "weekly 2026-W47", "monthly 2026-11"],
    "a11": ["daily 2026-11-20"],
    "a07": ["weekly 2026-W46"],
    "a06": ["monthly 2026-10"],
    "a04": ["monthly 2026-09"],
}


@pytest.fixture
def many(repo: ArtifactRepository) -> ArtifactRepository:
    for artifact_id, when in DATES.items():
        build(repo, artifact_id, when, {"co/common": b"common", "un/ique": artifact_id.encode()})
    store_bytes(repo, b"orphan")
    tmp = repo.open_tmp("a13")  # a backup in progress: its blobs are referenced already
    store_bytes(repo, b"busy")
    entry = {"fname": "bu/sy", "sha1": sha1(b"busy"), "size": 4}
    (tmp / "filestore.jsonl").write_text(json.dumps(entry) + "\n")
    return repo


def test_prune_keeps_the_right_artifacts_and_blobs(
    many: ArtifactRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    removed = sorted(set(DATES) - set(KEPT))
    events: list[str] = []
    real_blob_remove = many.blobs.remove

    def remove_folder(path: Path) -> None:
        assert all(not (many.root / a / "manifest.json").exists() for a in removed)
        events.append("folder")
        remove_path(path)

    def blob_remove(name: str) -> None:
        assert all(not (many.root / a).exists() for a in removed)
        events.append("blob")
        real_blob_remove(name)

    monkeypatch.setattr(repo_mod, "remove_path", remove_folder)
    monkeypatch.setattr(many.blobs, "remove", blob_remove)
    result = many.prune(POLICY)
    assert result.kept == KEPT and sorted(result.removed) == removed
    assert events == ["folder"] * len(removed) + ["blob"] * (len(removed) + 1)
    assert result.blobs_removed == len(removed) + 1
    assert [m.artifact_id for m in many.list()] == sorted(KEPT)
    assert many.blobs.has(sha1(b"common")) and many.blobs.has(sha1(b"busy"))
    assert not many.blobs.has(sha1(b"orphan"))
    for artifact_id in DATES:
        assert many.blobs.has(sha1(artifact_id.encode())) is (artifact_id in KEPT)
        if artifact_id in KEPT:
            assert many.verify(artifact_id, read_data=True) == []
    again = many.prune(POLICY)
    assert again.removed == [] and again.blobs_removed == 0 and again.bytes_freed == 0


def test_prune_dry_run_changes_nothing(many: ArtifactRepository) -> None:
    before = snapshot(many.root, skip=(".lock",))
    dry = many.prune(POLICY, dry_run=True)
    assert snapshot(many.root, skip=(".lock",)) == before
    real = many.prune(POLICY)
    assert (dry.kept, dry.removed, dry.blobs_removed, dry.bytes_freed) == (
        real.kept,
        real.removed,
        real.blobs_removed,
        real.bytes_freed,
    )
    assert dry.dry_run and not real.dry_run and real.bytes_freed > 0


def test_prune_refuses_when_a_kept_index_is_unreadable(many: ArtifactRepository) -> None:
    (many.root / "a07/filestore.jsonl").write_text("garbage\n")
    before = snapshot(many.root, skip=(".lock",))
    with pytest.raises(IntegrityError):
        many.prune(POLICY)
    assert snapshot(many.root, skip=(".lock",)) == before


def test_prune_waits_for_no_backup(many: ArtifactRepository) -> None:
    before = snapshot(many.root, skip=(".lock",))
    with many.lock(exclusive=False), pytest.raises(LockedError):
        many.prune(POLICY)
    assert snapshot(many.root, skip=(".lock",)) == before


# CLI --------------------------------------------------------------------------------------


def test_cli(proj_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = typer.Typer()

    @app.callback()
    def root(ctx: typer.Context) -> None:
        ctx.obj = {"config": None}

    artifacts_cli.register(app)
    monkeypatch.chdir(proj_dir)
    repo = ArtifactRepository(proj_dir / ".liftgate/artifacts")
    for artifact_id in ("a01", "a11", "a12"):
        build(repo, artifact_id, DATES[artifact_id], {"co/common": b"common"})

    def run(*args: str) -> tuple[int, dict[str, Any]]:
        result = CliRunner().invoke(app, ["artifacts", *args, "--json"])
        return result.exit_code, json.loads(result.stdout)

    code, out = run("list")
    assert code == 0 and [a["artifact_id"] for a in out["artifacts"]] == ["a01", "a11", "a12"]
    code, out = run("show", "a11")
    assert code == 0 and out["artifact_path"] == str(repo.path("a11"))
    assert out["manifest"] == repo.load("a11").model_dump(mode="json")
    code, out = run("verify", "a11", "--read-data")
    assert code == 0 and out["status"] == "OK" and out["problems"] == []
    (repo.path("a11") / "db/toc.dat").unlink()
    code, out = run("verify", "a11")
    assert (
        code == 6 and out["status"] == "FAIL" and out["message"].endswith("db/toc.dat is missing")
    )
    code, out = run("show", "../etc")
    assert code == 2 and out["error"] == "usage"
    code, out = run("prune", "--keep-last", "1", "--keep-daily", "0", "--keep-weekly", "0",
                    "--keep-monthly", "0", "--dry-run")  # fmt: skip
    assert code == 0 and out["removed"] == ["a11", "a01"] and out["dry_run"] is True
    code, out = run("prune")
    assert code == 0 and out["kept"] == {
        "a12": ["daily 2026-11-21", "weekly 2026-W47", "monthly 2026-11"],
        "a11": ["daily 2026-11-20"],
        "a01": ["daily 2026-08-05", "weekly 2026-W32", "monthly 2026-08"],
    }
    code, out = run("prune")
    assert code == 0 and out["status"] == "NOOP"
    code, out = run("prune", "--keep-daily", "0", "--keep-weekly", "0", "--keep-monthly", "0")
    assert code == 2 and "keeps nothing" in out["message"]
    assert [m.artifact_id for m in repo.list()] == ["a01", "a11", "a12"]
