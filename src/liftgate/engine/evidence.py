"""Evidence bundles: one folder per run that proves what happened.

``<evidence_dir>/<run_id>/`` holds at least ``inputs.json``, ``run_id.txt``, ``plan.json``,
``final_status.json``, a summary (``summary.md`` unless the run's kind names another) and
``MANIFEST.sha256``: one ``<sha256>  <relative path>`` line per file, written last. Every
text liftgate writes here is redacted first. ``verify_bundle`` fails when a listed file is
missing or changed, or a file is there that the manifest does not list.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from liftgate.engine.digest import sha256_file
from liftgate.engine.durability import Durability
from liftgate.engine.fsops import tree_members
from liftgate.engine.redaction import Redactor
from liftgate.errors import IntegrityError

__all__ = ["MANIFEST", "REQUIRED", "EvidenceBundle", "verify_bundle"]

MANIFEST = "MANIFEST.sha256"
REQUIRED = ("inputs.json", "run_id.txt", "plan.json", "final_status.json")


# json.dumps(value, sort_keys=True, default=str), without building an encoder per call
_encode = json.JSONEncoder(sort_keys=True, default=str).encode
_encode_key = json.encoder.encode_basestring_ascii  # json.dumps of a str


def _dumps(data: Any) -> str:
    """JSON with one top-level key per line (each value compact): readable, and written by
    the json module's C encoder (an ``indent`` would make it use the pure-Python one)."""
    if not isinstance(data, dict) or not data:
        return _encode(data) + "\n"
    lines = [f"  {_encode_key(str(key))}: {_encode(data[key])}" for key in sorted(data, key=str)]
    return "{\n" + ",\n".join(lines) + "\n}\n"


class EvidenceBundle:
    """The evidence folder of one run. Files are written whole; the manifest seals them."""

    def __init__(
        self,
        root: Path,
        run_id: str,
        redactor: Redactor,
        durability: Durability,
        summary_name: str = "summary.md",
    ) -> None:
        self.dir = root / run_id
        self.run_id = run_id
        self.redactor = redactor
        self.durability = durability
        self.summary_name = summary_name
        self._digests: dict[str, str] = {}  # files written by this process: name -> sha256
        # what this process wrote since the bundle was last flushed; until this process
        # made the folder or flushed all of it, that is not everything (see ``flush``)
        self._known = False
        self._dirty_files: set[Path] = set()
        self._dirty_folders: set[Path] = set()

    def create(self) -> None:
        try:
            os.mkdir(self.dir, 0o700)
        except FileNotFoundError:  # the first run: the evidence root does not exist yet
            self.dir.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            self.dir.mkdir(mode=0o700, exist_ok=True)
            self._known = True
            self._dirty_folders.update((self.dir, self.dir.parent, self.dir.parent.parent))
        except FileExistsError:
            if not self.dir.is_dir():
                raise
        else:
            self._known = True
            self._dirty_folders.update((self.dir, self.dir.parent))
        self.write_text("run_id.txt", self.run_id + "\n", atomic=False)

    def write_text(self, name: str, text: str, *, atomic: bool = True) -> Path:
        """Write ``text`` with its secrets redacted.

        ``atomic=False``: a file that does not exist yet is written in place (one open, no
        temp file and rename); a crash while it is written may leave it incomplete, so the
        caller must check or rewrite such a file when it resumes the run (``Run`` does, for
        the files it writes this way). An existing file is always replaced atomically.
        """
        return self._write(name, self.redactor.text(text).encode("utf-8"), atomic)

    def write_json(self, name: str, data: Any, *, atomic: bool = True) -> Path:
        """Write ``data`` as JSON: secrets are redacted from the data (the values of keys that
        look secret, and secrets inside every string) before it is serialised.
        ``atomic``: as for ``write_text``."""
        return self._write(name, _dumps(self.redactor.data(data)).encode("utf-8"), atomic)

    def write_redacted_json(self, name: str, data: Any, *, atomic: bool = True) -> Path:
        """``write_json`` for ``data`` that is already the output of this bundle's
        ``redactor.data`` (redacting it again would give the same bytes)."""
        return self._write(name, _dumps(data).encode("utf-8"), atomic)

    def _write(self, name: str, data: bytes, atomic: bool = True, listed: bool = True) -> Path:
        path = self.dir / name
        if "/" in name:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            key = path.relative_to(self.dir).as_posix()
            self._dirty_folders.update(p for p in path.parents if p.is_relative_to(self.dir))
        else:
            key = name
        self._dirty_files.add(path)
        self._dirty_folders.add(path.parent)
        if not atomic:
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass  # rewritten: atomically, below
            else:
                try:
                    _write_all(fd, data)
                finally:
                    os.close(fd)
                if listed:
                    self._digests[key] = hashlib.sha256(data).hexdigest()
                return path
        # written whole under a temp name, then renamed: a crash never leaves half a file;
        # the files are made durable together when the bundle is sealed
        tmp = path.with_name(f".{path.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            _write_all(fd, data)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        if listed:
            self._digests[key] = hashlib.sha256(data).hexdigest()
        return path

    def has(self, name: str) -> bool:
        return (self.dir / name).exists()

    def files(self) -> list[Path]:
        """Every file of the bundle but the manifest (and temp files), sorted."""
        return [self.dir / name for name in self._names()]

    def _names(self) -> list[str]:
        """The relative names of ``files()``, sorted the same way."""
        found: list[str] = []
        pending = [""]
        while pending:
            prefix = pending.pop()
            with os.scandir(self.dir / prefix if prefix else self.dir) as listing:
                for entry in listing:
                    if entry.is_dir():  # as os.walk: a link to a folder is skipped
                        if not entry.is_symlink():
                            pending.append(prefix + entry.name + "/")
                    elif entry.name != MANIFEST and not entry.name.startswith("."):
                        found.append(prefix + entry.name)
        # the order of the sorted Paths: by path components
        return sorted(found, key=lambda n: n.split("/"))

    def flush(self, *, files: Sequence[Path] = (), folders: Sequence[Path] = ()) -> None:
        """Make the folder durable (its files, its subfolders and its own entry), and with
        it, in the same ``Durability.flush``, the caller's ``files`` and ``folders``.

        Only what this process wrote since the last flush is flushed again; a bundle this
        process did not make (a resumed run) is flushed whole the first time.
        """
        if self._known:
            mine = sorted(self._dirty_files)
            below = sorted(self._dirty_folders, key=lambda p: len(p.parts), reverse=True)
        else:
            names, tree = tree_members(self.dir)
            mine = [Path(name) for name in names]
            below = [*(Path(folder) for folder in tree), self.dir.parent]
        self.durability.flush(files=[*files, *mine], folders=[*below, *folders])
        self._known = True
        self._dirty_files.clear()
        self._dirty_folders.clear()

    def seal(self, *, sync: bool = True) -> Path:
        """Write MANIFEST.sha256 over every file, then make the whole folder durable.

        The files, the manifest and the folder entries are flushed by one
        ``Durability.flush`` (``[durability] flush``: an fsync of each, their write-back
        started together, by default; one ``syncfs`` with ``"filesystem"``). ``sync=False``:
        the caller flushes the folder itself (together with what it writes next), before
        it reports the run's end.

        A new manifest is written in place: until the run's end is recorded, a crash
        leaves the run to ``liftgate recover``, which seals the folder again (an existing
        manifest is replaced atomically).
        """
        lines = []
        for name in self._names():
            digest = self._digests.get(name) or sha256_file(self.dir / name)
            lines.append(f"{digest}  {name}\n")
        manifest = self._write(MANIFEST, "".join(lines).encode(), atomic=False, listed=False)
        if sync:
            self.flush()
        return manifest


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def verify_bundle(folder: Path, required: tuple[str, ...] = REQUIRED) -> list[str]:
    """Problems found in an evidence folder; empty when it verifies."""
    if not folder.is_dir():
        raise IntegrityError(f"no evidence folder at {folder}")
    manifest = folder / MANIFEST
    if not manifest.is_file():
        return [f"{MANIFEST} is missing"]
    problems: list[str] = []
    listed: dict[str, str] = {}
    for number, line in enumerate(manifest.read_text(encoding="utf-8").splitlines(), 1):
        digest, sep, name = line.partition("  ")
        if not sep or len(digest) != 64:
            problems.append(f"{MANIFEST} line {number} is malformed")
            continue
        listed[name] = digest
    for name, digest in sorted(listed.items()):
        path = folder / name
        if not path.resolve().is_relative_to(folder.resolve()):
            problems.append(f"{name}: points outside the evidence folder")
        elif not path.is_file():
            problems.append(f"{name}: missing")
        elif hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            problems.append(f"{name}: changed since the run sealed it")
    present = {
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and p.name != MANIFEST
    }
    for name in sorted(present - set(listed)):
        problems.append(f"{name}: not listed in {MANIFEST}")
    wanted = list(required)
    try:
        final = json.loads((folder / "final_status.json").read_text(encoding="utf-8"))
        if isinstance(final, dict) and isinstance(final.get("summary_file"), str):
            wanted.append(final["summary_file"])
    except (OSError, ValueError):
        pass
    for name in wanted:
        if name not in listed:
            problems.append(f"{name}: required but absent")
    return problems
