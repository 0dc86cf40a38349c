"""The append-only, hash-chained history (``<state_dir>/history.jsonl``).

Invariants:

* every line is one JSON object with ``seq`` (1, 2, ...) and ``prev`` — the sha256 of the
  previous line's bytes (64 zeros for the first line);
* a line is appended and fsynced before the command that made it reports OK;
* the ops store keeps the sha256 of the last line and the line count, so deleting lines at
  the end (truncation) is detected too, not only edits, deletions and reorderings.

The append order is: write + fsync the line, then record the new head in the ops store. A
crash between the two leaves exactly one line beyond the recorded head whose ``prev`` is
that head; the next append (or ``liftgate recover``) adopts it. Anything else is an
integrity failure that ``liftgate history verify`` reports.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from liftgate.engine.digest import file_identity
from liftgate.engine.evidence import EvidenceBundle
from liftgate.engine.fsops import fsync_dir
from liftgate.engine.redaction import Redactor
from liftgate.errors import IntegrityError
from liftgate.store.base import OpsStore, utcnow

__all__ = ["GENESIS", "History", "HistoryReport"]

GENESIS = "0" * 64
_TAIL = 1 << 16


def _sha(line: bytes) -> str:
    return hashlib.sha256(line).hexdigest()


# one encoder for every line, instead of one per json.dumps call
_encode_line = json.JSONEncoder(sort_keys=True, separators=(",", ":")).encode


class HistoryReport(NamedTuple):
    ok: bool
    count: int  # type: ignore[assignment]  # a field named like tuple.count
    head: str | None
    problems: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "count": self.count, "head": self.head, "problems": self.problems}


class History:
    """One history file plus its head in the ops store."""

    def __init__(self, path: Path, store: OpsStore, redactor: Redactor) -> None:
        self.path = path
        self.store = store
        self.redactor = redactor
        self.key = f"{os.uname().nodename}:{path}"
        # after this object's last append: the file's identity, the head and the count it
        # recorded. While the file still has that identity, nobody wrote to it since, so the
        # head to chain onto is known without reading the ops store and the file's tail.
        self._appended: tuple[tuple[int, int, int, int, int], str, int] | None = None

    # reading --------------------------------------------------------------
    def _lines(self) -> tuple[list[bytes], bytes]:
        """Complete lines, and a trailing fragment without newline (b"" if none)."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return [], b""
        parts = raw.split(b"\n")
        return parts[:-1], parts[-1]

    def entries(self) -> list[dict[str, Any]]:
        lines, _ = self._lines()
        out: list[dict[str, Any]] = []
        for number, line in enumerate(lines, 1):
            try:
                out.append(json.loads(line))
            except ValueError as exc:
                raise IntegrityError(
                    f"history line {number} is not valid JSON; run liftgate history verify"
                ) from exc
        return out

    def _tail(self) -> tuple[bytes | None, int, bytes]:
        """(last complete line or None, offset where a trailing fragment starts, fragment)."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return None, 0, b""
        try:
            size = os.fstat(fd).st_size
            start = max(0, size - _TAIL)
            os.lseek(fd, start, os.SEEK_SET)
            data = b""
            while len(data) < size - start:
                chunk = os.read(fd, size - start - len(data))
                if not chunk:
                    break
                data += chunk
        finally:
            os.close(fd)
        if start > 0 and data.count(b"\n") < 2:
            # a line longer than the tail window: fall back to a full read
            lines, fragment = self._lines()
            return (lines[-1] if lines else None), size - len(fragment), fragment
        body, _, fragment = data.rpartition(b"\n")
        if not body and not data.startswith(b"\n") and b"\n" not in data:
            return None, start, data
        last = body.rsplit(b"\n", 1)[-1]
        return last, size - len(fragment), fragment

    # writing --------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with self.store.lock(f"history:{self.key}", wait=120):
            yield

    def _current_head(self) -> tuple[str, int]:
        """The head to chain onto, adopting a line a crashed append left behind."""
        recorded = self.store.history_head(self.key)
        head, count = (recorded.head, recorded.count) if recorded else (GENESIS, 0)
        last, fragment_at, fragment = self._tail()
        if fragment:
            # a line that was never completed was never acknowledged: drop it
            with open(self.path, "r+b") as fh:
                fh.truncate(fragment_at)
                fh.flush()
                os.fsync(fh.fileno())
            last, _, _ = self._tail()
        if last is None:
            if count:
                raise IntegrityError(
                    f"the history {self.path} is empty but the ops store records {count} lines",
                    hint="run liftgate history verify",
                )
            return GENESIS, 0
        last_hash = _sha(last)
        if last_hash == head:
            return head, count
        try:
            entry = json.loads(last)
        except ValueError:
            entry = {}
        if entry.get("prev") == head and entry.get("seq") == count + 1:
            self.store.set_history_head(self.key, last_hash, count + 1)
            return last_hash, count + 1
        raise IntegrityError(
            f"the history {self.path} does not end where the ops store says it does",
            hint="run liftgate history verify to see what changed",
        )

    def append(
        self,
        entry: dict[str, Any],
        *,
        with_evidence: EvidenceBundle | None = None,
    ) -> dict[str, Any]:
        """Append ``entry`` (redacted) and make it durable; returns the line as written.

        ``with_evidence``: a run's bundle, written just before, that must be durable with
        the line: the line is flushed by the bundle's flush (``EvidenceBundle.flush``), in
        one ``Durability.flush``. Either way the line is durable before the ops store
        records the new head.
        """
        with self._locked():
            known = self._appended
            self._appended = None
            new_file = False
            try:
                same = known is not None and file_identity(os.stat(self.path)) == known[0]
            except FileNotFoundError:
                same = False
            if known is not None and same:
                head, count = known[1], known[2]
            else:
                head, count = self._current_head()
                new_file = not self.path.exists()
            record = dict(self.redactor.data(entry))
            record.update(seq=count + 1, prev=head, ts=record.get("ts") or utcnow())
            line = _encode_line(record).encode()
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                written = os.write(fd, line + b"\n")
                if written != len(line) + 1:
                    raise OSError(f"short write to {self.path} ({written} of {len(line) + 1})")
                if with_evidence is None:
                    os.fsync(fd)
                after = file_identity(os.fstat(fd))
            finally:
                os.close(fd)
            if with_evidence is not None:
                with_evidence.flush(
                    files=[self.path], folders=[self.path.parent] if new_file else []
                )
            elif new_file:
                fsync_dir(self.path.parent)
            new_head = _sha(line)
            self.store.set_history_head(self.key, new_head, count + 1)
            self._appended = (after, new_head, count + 1)
            return record

    def reconcile(self) -> None:
        """Adopt a line a crashed append left behind (used by ``liftgate recover``)."""
        if not self.path.exists() and self.store.history_head(self.key) is None:
            return
        with self._locked():
            self._current_head()

    def find(self, **match: Any) -> list[dict[str, Any]]:
        return [e for e in self.entries() if all(e.get(k) == v for k, v in match.items())]

    # checking -------------------------------------------------------------
    def verify(self) -> HistoryReport:
        problems: list[str] = []
        lines, fragment = self._lines()
        prev = GENESIS
        for number, line in enumerate(lines, 1):
            try:
                entry = json.loads(line)
            except ValueError:
                problems.append(f"line {number}: not valid JSON")
                prev = _sha(line)
                continue
            if entry.get("seq") != number:
                problems.append(f"line {number}: seq is {entry.get('seq')}, expected {number}")
            if entry.get("prev") != prev:
                problems.append(
                    f"line {number}: does not chain to line {number - 1} "
                    "(a line was edited, removed or moved)"
                )
            prev = _sha(line)
        if fragment:
            problems.append(f"line {len(lines) + 1}: incomplete line at the end of the file")
        recorded = self.store.history_head(self.key)
        count = len(lines)
        head = prev if lines else None
        if recorded is None:
            if count:
                problems.append(
                    f"the ops store has no head for this history but it has {count} lines"
                )
        else:
            if recorded.count != count:
                problems.append(
                    f"the ops store records {recorded.count} lines, the file has {count} "
                    "(lines were removed or added outside liftgate)"
                )
            elif recorded.head != (head or GENESIS):
                problems.append("the last line differs from the one the ops store recorded")
        return HistoryReport(ok=not problems, count=count, head=head, problems=problems)
