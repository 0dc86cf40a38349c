"""N promotions of one target at once: serialised or refused, never corrupted."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest

from support.tree import cli_json

N = 8


def _launch(proj: Path, staged: str, extra: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "liftgate",
            "promote",
            staged,
            "--target",
            "docs/a.md",
            "--json",
            *extra,
        ],
        cwd=proj,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("wait", [False, True], ids=["refuse", "wait"])
def test_concurrent_promotions(proj_dir: Path, wait: bool) -> None:
    (proj_dir / "docs/a.md").write_text("original\n" * 1000)
    contents = {}
    for i in range(N):
        body = f"content {i}\n" * (1000 + i)
        (proj_dir / f"staged/{i}.md").write_text(body)
        contents[i] = body
    procs = [
        _launch(proj_dir, f"staged/{i}.md", ["--wait", "120"] if wait else []) for i in range(N)
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=180)
        results.append((proc.returncode, json.loads(out.strip().splitlines()[-1]), err))
    ok = [r for r in results if r[0] == 0]
    refused = [r for r in results if r[0] != 0]
    for code, payload, err in refused:
        assert code == 4, (payload, err)
        assert "holds the lock" in payload["message"]
    assert ok, "at least one promotion must win"
    if wait:
        assert len(ok) == N
    final = (proj_dir / "docs/a.md").read_text()
    assert final in contents.values()
    code, verify = cli_json(["history", "verify"], proj_dir)
    assert code == 0 and verify["count"] == len(ok)
    # the history is a consistent chain of promotions: each one's "before" is the previous "after"
    entries = [
        json.loads(line) for line in (proj_dir / ".liftgate/history.jsonl").read_text().splitlines()
    ]
    for prev, cur in itertools.pairwise(entries):
        assert cur["before_digest"] == prev["target_digest"]
    for _, payload, _ in ok:
        code, ev = cli_json(["evidence", "verify", payload["run_id"]], proj_dir)
        assert code == 0, ev
    # and every one can be rolled back, in order, to the original
    for _ in ok:
        code, back = cli_json(["rollback", "--target", "docs/a.md"], proj_dir)
        assert code == 0, back
    assert (proj_dir / "docs/a.md").read_text() == "original\n" * 1000
