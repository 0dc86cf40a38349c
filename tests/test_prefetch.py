"""The digest prefetch: a large staged file hashed while the command starts.

A prefetched digest must only ever describe the bytes that are copied: these tests change
the file between the prefetch and the copy and check that the recorded sha256 is always the
one of the bytes the target received.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from liftgate.cli.entry import _VALUED, _staged
from liftgate.cli.filecmd import _parser
from liftgate.engine import prefetch
from liftgate.engine.fsops import (
    _SPLIT_COMPARE,
    _WRITEBACK_CHUNK,
    _Flusher,
    _same_bytes,
    copy_file_verified,
)
from support.tree import cli_json

SIZE = prefetch.LARGE + 12345


def _write(path: Path, fill: bytes) -> bytes:
    data = (fill * (SIZE // len(fill) + 1))[:SIZE]
    path.write_bytes(data)
    return data


@pytest.fixture(autouse=True)
def _no_leftover_jobs() -> None:
    prefetch._started.clear()


def test_a_started_hash_is_the_one_the_copy_uses(tmp_path: Path) -> None:
    src = tmp_path / "big.bin"
    data = _write(src, b"abc")
    prefetch.start(src)
    started = prefetch._started[os.path.realpath(src)]
    assert prefetch.job(src, os.stat(src)) is started
    assert started.result() == hashlib.sha256(data).hexdigest()
    assert prefetch._started == {}  # handed out once


def test_a_file_changed_since_the_prefetch_is_hashed_again(tmp_path: Path) -> None:
    src = tmp_path / "big.bin"
    _write(src, b"old")
    prefetch.start(src)
    stale = prefetch._started[os.path.realpath(src)]
    stale.result()
    new = tmp_path / "new.bin"
    data = _write(new, b"new")
    os.replace(new, src)  # same path, other bytes
    digest = copy_file_verified(src, tmp_path / "copy.bin")
    assert digest == hashlib.sha256(data).hexdigest() != stale.result()
    assert (tmp_path / "copy.bin").read_bytes() == data


def test_a_file_rewritten_in_place_since_the_prefetch_is_hashed_again(tmp_path: Path) -> None:
    src = tmp_path / "big.bin"
    _write(src, b"old")
    prefetch.start(src)
    prefetch._started[os.path.realpath(src)].result()
    with open(src, "r+b") as fh:  # same inode and size, one byte different
        fh.write(b"X")
    data = src.read_bytes()
    assert copy_file_verified(src, tmp_path / "copy.bin") == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("kind", ["small", "missing", "folder"])
def test_only_large_regular_files_are_prefetched(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "x"
    if kind == "small":
        path.write_bytes(b"x" * 100)
    elif kind == "folder":
        path.mkdir()
    prefetch.start(path)
    assert prefetch._started == {}


@pytest.mark.parametrize(
    ("rest", "expected"),
    [
        (["staged/a", "--target", "live/a"], "staged/a"),
        (["--target", "live/a", "staged/a", "--json"], "staged/a"),
        (["--wait", "3", "--expect-prefix", "-x", "staged/a", "--target", "t"], "staged/a"),
        (["--target=live/a", "staged/a"], "staged/a"),
        (["staged/a", "--target", "t", "--dry-run"], None),  # a dry run hashes nothing
        (["--help"], None),
        (["a", "b", "--target", "t"], None),  # argparse will refuse it
        (["--", "-odd", "--target", "t"], None),
        (["--target", "t"], None),
    ],
)
def test_the_staged_argument_is_found_only_when_plain(rest: list[str], expected: str) -> None:
    assert _staged(rest) == expected


def test_the_options_taking_a_value_are_the_ones_promote_accepts() -> None:
    # the entry point reads argv before argparse is loaded; it must agree with argparse
    valued = {
        name
        for action in _parser("promote")._actions
        if action.nargs != 0
        for name in action.option_strings
    }
    assert valued == _VALUED


def test_cli_promotion_of_a_large_file_records_the_bytes_it_wrote(proj_dir: Path) -> None:
    staged = proj_dir / "staged/big.bin"
    data = _write(staged, b"0123456789")
    code, out = cli_json(["promote", "staged/big.bin", "--target", "docs/big.bin"], proj_dir)
    assert code == 0 and out["status"] == "OK", out
    assert (proj_dir / "docs/big.bin").read_bytes() == data
    digest = hashlib.sha256(data).hexdigest()
    assert out["target_digest"] == digest
    line = (proj_dir / ".liftgate/history.jsonl").read_text().splitlines()[-1]
    assert json.loads(line)["source_digest"] == digest


def test_the_switch_interval_is_put_back_when_the_hash_ends(tmp_path: Path) -> None:
    src = tmp_path / "big.bin"
    data = _write(src, b"xyz")
    before = sys.getswitchinterval()
    prefetch.start(src)
    assert prefetch._started[os.path.realpath(src)].result() == hashlib.sha256(data).hexdigest()
    assert sys.getswitchinterval() == before


def test_the_entry_point_loads_only_hashlib_before_the_hash_begins() -> None:
    # what `liftgate promote` imports before prefetch.start: every module more is time the
    # hash of a large staged file waits (pathlib, typing, threading are all heavier)
    script = (
        "import sys; before = set(sys.modules)\n"
        "import liftgate.cli.entry, liftgate.engine.prefetch\n"
        "print(' '.join(sorted(set(sys.modules) - before)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout.split()
    allowed = {"_blake2", "_hashlib", "hashlib", "__future__"}
    assert {m for m in out if not m.startswith("liftgate")} <= allowed, out


def test_a_large_copy_in_pieces_holds_the_source_and_an_fsync_error_is_not_lost(
    tmp_path: Path,
) -> None:
    src = tmp_path / "big.bin"
    data = os.urandom(2 * _WRITEBACK_CHUNK + 12345)  # three write-back pieces, one short
    src.write_bytes(data)
    dst = tmp_path / "copy.bin"
    assert copy_file_verified(src, dst) == hashlib.sha256(data).hexdigest()
    assert dst.read_bytes() == data
    # the flusher's fsync runs in its own thread: its failure must reach the caller
    fd = os.open(tmp_path, os.O_RDONLY)
    os.close(fd)  # a descriptor that is no longer open: fsync fails with EBADF
    flusher = _Flusher(fd)
    flusher.close()
    with pytest.raises(OSError):
        flusher.wait()


def test_a_large_comparison_in_two_halves_finds_every_difference(tmp_path: Path) -> None:
    size = _SPLIT_COMPARE + 3 * 4096 + 7  # split in two; the halves end off a chunk boundary
    data = os.urandom(size)
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    a.write_bytes(data)

    def same_as_a(other: bytes) -> bool:
        b.write_bytes(other)
        with open(a, "rb") as fa, open(b, "rb") as fb:
            return _same_bytes(fa.fileno(), fb.fileno(), size)

    assert same_as_a(data)
    for at in (0, size // 4, size // 2 + 1, size - 1):  # in either half
        changed = bytearray(data)
        changed[at] ^= 0xFF
        assert not same_as_a(bytes(changed)), at
    assert not same_as_a(data + b"x")  # one byte more
    assert not same_as_a(data[:-1])  # one byte less
