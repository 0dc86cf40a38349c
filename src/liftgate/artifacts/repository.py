"""The artifacts folder (``Config.artifacts_dir``): artifacts, their blobs, check and prune.

Besides the contract's layout, ``<id>/manifest.json.sha256`` seals the manifest (``sha256sum``
format, written by ``publish``), ``.tmp-<id>/`` is a backup being written and ``.lock`` is
held shared by backups and exclusively by prune. So every file has a digest (dump files in
``db_dump.files``, the index in ``filestore.index``, blobs in their names, the manifest in its
seal) and ``verify(read_data=True)`` finds a byte changed anywhere, like ``restic check
--read-data``; without ``read_data`` only the dump files and blobs are not re-read.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from liftgate.artifacts.blobs import BlobStore, check_sha1, make_private_dirs
from liftgate.artifacts.contract import SCHEMA_PATH, ArtifactManifest, DumpFile, load_manifest
from liftgate.artifacts.retention import RetentionPolicy, select
from liftgate.engine.digest import sha256_file
from liftgate.engine.fsops import atomic_write_bytes, fsync_dir, remove_path, rename_noreplace
from liftgate.errors import IntegrityError, LockedError, OperationError, UsageError

__all__ = [
    "ArtifactRepository",
    "IndexEntry",
    "PruneResult",
    "created_at",
    "dump_digest",
    "index_digest",
    "parse_index",
]

MANIFEST = "manifest.json"
SEAL = "manifest.json.sha256"
INDEX = "filestore.jsonl"
DB = "db"
TMP_PREFIX = ".tmp-"
_RESERVED = frozenset({"blobs"})
_ID = re.compile(ArtifactManifest.model_json_schema()["properties"]["artifact_id"]["pattern"])
_SHA1_FIELD = re.compile(rb'"sha1"\s*:\s*"([0-9a-f]{40})"')


@dataclass(frozen=True)
class IndexEntry:
    """One line of ``filestore.jsonl``: an attachment's path in the filestore, its blob."""

    fname: str
    sha1: str
    size: int


@dataclass(frozen=True)
class PruneResult:
    kept: dict[str, list[str]]
    removed: list[str]
    blobs_removed: int
    bytes_freed: int
    dry_run: bool
    policy: str = ""
    blobs_kept: int = 0


def dump_digest(files: Sequence[DumpFile]) -> str:
    """``db_dump.sha256``: the sha256 of the sorted ``"<sha256>  <name>\\n"`` lines."""
    lines = sorted(f"{f.sha256}  {f.name}\n" for f in files)
    return hashlib.sha256("".join(lines).encode("utf-8")).hexdigest()


def index_digest(path: Path) -> str:
    """``filestore.index.sha256``: the sha256 of the index file's bytes."""
    return sha256_file(path)


def created_at(manifest: ArtifactManifest) -> datetime:
    return datetime.fromisoformat(manifest.created_at)


def check_artifact_id(artifact_id: str) -> str:
    if not _ID.fullmatch(artifact_id) or artifact_id in _RESERVED:
        raise UsageError(f"{artifact_id!r} is not a valid artifact id")
    return artifact_id


def _safe_fname(fname: str) -> bool:
    parts = fname.split("/")
    return "\0" not in fname and all(p not in ("", ".", "..") for p in parts)


def parse_index(path: Path) -> list[IndexEntry]:
    """Read a ``filestore.jsonl``; IntegrityError on a malformed line or unsorted names."""
    entries: list[IndexEntry] = []
    with open(path, "rb") as fh:
        for nr, raw in enumerate(fh, start=1):
            try:
                obj = json.loads(raw)
                fname, sha1, size = obj["fname"], obj["sha1"], obj["size"]
                ok = set(obj) == {"fname", "sha1", "size"} and isinstance(fname, str)
                ok = ok and _safe_fname(fname) and isinstance(size, int)
                ok = ok and not isinstance(size, bool) and size >= 0
                check_sha1(sha1)
            except (ValueError, TypeError, KeyError, IntegrityError):
                ok = False
            if not ok:
                raise IntegrityError(f"line {nr} of {path} is not a valid filestore entry")
            if entries and fname <= entries[-1].fname:
                raise IntegrityError(f"line {nr} of {path} is not sorted by fname or repeats one")
            entries.append(IndexEntry(fname, sha1, size))
    return entries


@cache
def _schema_validator() -> Any:
    from jsonschema import Draft202012Validator  # type: ignore[import-untyped,unused-ignore]

    return Draft202012Validator(json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))


def _seal_line(manifest_path: Path) -> bytes:
    return f"{sha256_file(manifest_path)}  {MANIFEST}\n".encode()


class ArtifactRepository:
    """Artifacts under ``root`` and the blob store they share."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.blobs = BlobStore(root / "blobs")

    def path(self, artifact_id: str) -> Path:
        return self.root / check_artifact_id(artifact_id)

    def _published(self) -> list[str]:
        names = os.listdir(self.root) if self.root.is_dir() else []
        names = [n for n in names if n not in _RESERVED and _ID.fullmatch(n)]
        return sorted(n for n in names if (self.root / n / MANIFEST).is_file())

    def load(self, artifact_id: str) -> ArtifactManifest:
        path = self.path(artifact_id) / MANIFEST
        if not path.is_file():
            raise UsageError(f"there is no artifact {artifact_id} in {self.root}")
        manifest = load_manifest(path)
        if manifest.artifact_id != artifact_id:
            raise IntegrityError(
                f"the artifact in {path.parent} says it is {manifest.artifact_id}",
                hint=f"run liftgate artifacts verify {artifact_id}",
            )
        return manifest

    @contextlib.contextmanager
    def lock(self, *, exclusive: bool, wait: float = 0.0) -> Iterator[None]:
        """Backups hold it shared from ``open_tmp`` to ``publish``; prune holds it exclusive,
        so it never removes a blob a backup still in progress has stored."""
        make_private_dirs(self.root)
        fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
            started = time.monotonic()
            while True:
                try:
                    fcntl.flock(fd, mode | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() - started >= wait:
                        raise LockedError(
                            f"another backup or prune is using {self.root}",
                            hint="retry when it has finished",
                        ) from None
                    time.sleep(0.05)
            yield
        finally:
            os.close(fd)

    def open_tmp(self, artifact_id: str) -> Path:
        """A fresh, private ``<root>/.tmp-<id>`` to write a backup into (a leftover of an
        earlier attempt with this id is removed)."""
        if self.path(artifact_id).exists():
            raise UsageError(f"the artifact {artifact_id} already exists in {self.root}")
        tmp = self.root / f"{TMP_PREFIX}{artifact_id}"
        remove_path(tmp)
        make_private_dirs(tmp)
        return tmp

    def publish(self, tmp: Path, artifact_id: str) -> Path:
        """Seal the manifest in ``tmp`` and rename ``tmp`` to ``<root>/<id>`` (atomically)."""
        final = self.path(artifact_id)
        if not os.path.samefile(tmp.parent, self.root) or not (tmp / MANIFEST).is_file():
            raise OperationError(f"cannot publish {tmp}: it is not a finished backup folder")
        manifest = load_manifest(tmp / MANIFEST)
        if manifest.artifact_id != artifact_id:
            raise IntegrityError(f"the manifest in {tmp} is for {manifest.artifact_id}")
        atomic_write_bytes(tmp / SEAL, _seal_line(tmp / MANIFEST))
        if (tmp / DB).is_dir():
            fsync_dir(tmp / DB)
        try:
            rename_noreplace(tmp, final)
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
            raise UsageError(f"the artifact {artifact_id} already exists in {self.root}") from None
        fsync_dir(self.root)
        return final

    def delete(self, artifact_id: str) -> None:
        """Remove an artifact: its manifest first (durably), then its folder."""
        folder = self.path(artifact_id)
        if not folder.is_dir():
            raise UsageError(f"there is no artifact {artifact_id} in {self.root}")
        self._unpublish(folder)
        remove_path(folder)
        fsync_dir(self.root)

    @staticmethod
    def _unpublish(folder: Path) -> None:
        for name in (MANIFEST, SEAL):
            (folder / name).unlink(missing_ok=True)
        fsync_dir(folder)

    def read_index(self, artifact_id: str) -> list[IndexEntry]:
        path = self.path(artifact_id) / INDEX
        try:
            return parse_index(path)
        except OSError as exc:
            raise IntegrityError(f"cannot read {path}: {exc.strerror}") from exc

    def verify(self, artifact_id: str, read_data: bool = False) -> list[str]:
        """Every problem found in the artifact (empty when it is sound)."""
        folder = self.path(artifact_id)
        if not (folder / MANIFEST).is_file():
            raise UsageError(f"there is no artifact {artifact_id} in {self.root}")
        problems: list[str] = []
        manifest = self._verify_manifest(folder, artifact_id, problems)
        if manifest is None:
            return problems
        self._verify_dump(folder, manifest, read_data, problems)
        self._verify_filestore(folder, manifest, read_data, problems)
        return problems

    def _verify_manifest(
        self, folder: Path, artifact_id: str, problems: list[str]
    ) -> ArtifactManifest | None:
        path = folder / MANIFEST
        try:
            seal = (folder / SEAL).read_bytes()
            if seal != _seal_line(path):
                problems.append(f"{MANIFEST} does not match its seal {SEAL}")
        except FileNotFoundError:
            problems.append(f"{SEAL} is missing, so {MANIFEST} cannot be checked")
        try:
            raw = json.loads(path.read_bytes())
        except ValueError as exc:
            problems.append(f"{MANIFEST} is not valid JSON: {exc}")
            return None
        for error in sorted(_schema_validator().iter_errors(raw), key=lambda e: list(e.path)):
            where = "/".join(str(p) for p in error.path) or "(top)"
            problems.append(f"{MANIFEST} breaks the JSON Schema at {where}: {error.message}")
        try:
            manifest = ArtifactManifest.model_validate(raw)
        except ValidationError as exc:
            for err in exc.errors():
                where = ".".join(str(p) for p in err["loc"]) or "(top)"
                problems.append(f"{MANIFEST} breaks the model at {where}: {err['msg']}")
            return None
        if manifest.artifact_id != artifact_id:
            problems.append(f"{MANIFEST} names the artifact {manifest.artifact_id}")
        return manifest

    @staticmethod
    def _verify_dump(
        folder: Path, manifest: ArtifactManifest, read_data: bool, problems: list[str]
    ) -> None:
        dump = manifest.db_dump
        if dump_digest(dump.files) != dump.sha256:
            problems.append("db_dump.sha256 does not match the digests of db_dump.files")
        if sum(f.size for f in dump.files) != dump.size:
            problems.append("db_dump.size is not the total size of db_dump.files")
        db = folder / DB
        if not db.is_dir():
            problems.append(f"the dump folder {DB}/ is missing")
            return
        listed = {f.name for f in dump.files}
        if len(listed) != len(dump.files):
            problems.append("db_dump.files lists a file twice")
        for name in sorted(set(os.listdir(db)) - listed):
            problems.append(f"{DB}/{name} is not listed in db_dump.files")
        for item in dump.files:
            path = db / item.name
            if not path.is_file():
                problems.append(f"{DB}/{item.name} is missing")
            elif (size := path.stat().st_size) != item.size:
                problems.append(f"{DB}/{item.name} is {size} bytes, not {item.size}")
            elif read_data and sha256_file(path) != item.sha256:
                problems.append(f"{DB}/{item.name} does not match its sha256")

    def _verify_filestore(
        self, folder: Path, manifest: ArtifactManifest, read_data: bool, problems: list[str]
    ) -> None:
        info = manifest.filestore
        path = folder / INDEX
        if not path.is_file():
            problems.append(f"the filestore index {INDEX} is missing")
            return
        if index_digest(path) != info.index.sha256:
            problems.append(f"{INDEX} does not match filestore.index.sha256")
        try:
            entries = parse_index(path)
        except IntegrityError as exc:
            problems.append(exc.message)
            return
        if len(entries) != info.count:
            problems.append(f"{INDEX} has {len(entries)} entries, filestore.count is {info.count}")
        if (total := sum(e.size for e in entries)) != info.bytes:
            problems.append(f"{INDEX} totals {total} bytes, filestore.bytes is {info.bytes}")
        if overlap := {e.fname for e in entries} & set(info.missing):
            problems.append(f"{sorted(overlap)[0]} is both indexed and listed as missing")
        sizes: dict[str, int] = {}
        for entry in entries:
            if sizes.setdefault(entry.sha1, entry.size) != entry.size:
                problems.append(f"{INDEX} gives the blob {entry.sha1} two different sizes")
        for sha1, size in sizes.items():
            try:
                actual = self.blobs.size(sha1)
            except IntegrityError as exc:
                problems.append(exc.message)
                continue
            if actual != size:
                problems.append(f"the blob {sha1} is {actual} bytes, not {size}")
            elif read_data and not self.blobs.verify(sha1):
                problems.append(f"the blob {sha1} does not match its sha1")

    def _referenced(self, keep: set[str]) -> set[str]:
        """Blobs referenced by the kept artifacts and by any folder that is not an artifact
        being removed (backups in progress, leftovers): nothing referenced is ever deleted."""
        refs: set[str] = set()
        for artifact_id in sorted(keep):
            refs.update(e.sha1 for e in self.read_index(artifact_id))
        published = set(self._published())
        for name in sorted(os.listdir(self.root)):
            index = self.root / name / INDEX
            if name not in published and name != "blobs" and index.is_file():
                refs.update(m.decode() for m in _SHA1_FIELD.findall(index.read_bytes()))
        return refs

    def prune(self, policy: RetentionPolicy, dry_run: bool = False) -> PruneResult:
        """Forget the artifacts ``policy`` does not keep, then the blobs nothing references.

        Order (each step durable before the next): the removed artifacts' manifests, their
        folders, then the unreferenced blobs. ``dry_run`` reports the same and changes
        nothing. Refuses (IntegrityError) if any artifact's manifest or index is unreadable.
        """
        policy.validate()
        if not self.root.is_dir():
            return PruneResult({}, [], 0, 0, dry_run, policy.describe())
        guard = contextlib.nullcontext() if dry_run else self.lock(exclusive=True)
        with guard:
            manifests = self.list()
            kept, removed = select([(m.artifact_id, created_at(m)) for m in manifests], policy)
            refs = self._referenced(set(kept))
            stored = list(self.blobs.iter_all())
            doomed = [sha1 for sha1 in stored if sha1 not in refs]
            folders = [self.path(a) for a in removed]
            freed = sum(_tree_bytes(f) for f in folders)
            freed += sum(self.blobs.size(sha1) for sha1 in doomed)
            if not dry_run:
                for folder in folders:
                    self._unpublish(folder)
                for folder in folders:
                    remove_path(folder)
                fsync_dir(self.root)
                for sha1 in doomed:
                    self.blobs.remove(sha1)
                for prefix in sorted({sha1[:2] for sha1 in doomed}):
                    fsync_dir(self.blobs.root / prefix)
            kept_blobs = len(stored) - len(doomed)
            return PruneResult(
                kept, removed, len(doomed), freed, dry_run, policy.describe(), kept_blobs
            )

    # kept last: a method named ``list`` shadows the builtin in the annotations after it
    def list(self) -> list[ArtifactManifest]:
        """Every finished artifact, oldest first; IntegrityError if a manifest is bad."""
        manifests = [self.load(name) for name in self._published()]
        return sorted(manifests, key=lambda m: (created_at(m), m.artifact_id))


def _tree_bytes(folder: Path) -> int:
    return sum(os.lstat(Path(d, n)).st_size for d, _, names in os.walk(folder) for n in names)
