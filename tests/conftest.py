from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from liftgate.engine.project import Project

CONFIG = """\
[project]
roots = ["."]
state_dir = ".liftgate"
"""


@pytest.fixture
def proj_dir(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "liftgate.toml").write_text(CONFIG)
    (root / "docs").mkdir()
    (root / "staged").mkdir()
    return root


@pytest.fixture
def project(proj_dir: Path) -> Iterator[Project]:
    p = Project.open(cwd=proj_dir)
    try:
        yield p
    finally:
        p.close()
