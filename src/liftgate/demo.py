"""``liftgate demo``: a guided tour in a throw-away sandbox.

Builds a project in a temp folder and walks through promote → verify → rollback →
history verify → evidence verify for a file and a folder, then backs up and restores a
sample Odoo-shaped environment on a private PostgreSQL cluster, printing what it does.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from liftgate.engine.evidence import verify_bundle
from liftgate.engine.project import Project
from liftgate.errors import DriftError, GuardrailError
from liftgate.files.api import promote, rollback

__all__ = ["run_demo"]

CONFIG = """\
[project]
roots = ["."]
state_dir = ".liftgate"

# the seed's rule: promoted M2M documents start with this marker
[[files.verify]]
glob = "docs/*.md"
starts_with = "# M2M v1.0"
"""


def run_demo(say: Callable[[str], None], keep: bool = False) -> Path:
    """Run the tour; returns the sandbox folder (deleted unless ``keep``)."""
    sandbox = Path(tempfile.mkdtemp(prefix="liftgate-demo-"))
    try:
        _tour(sandbox, say)
    finally:
        if not keep:
            shutil.rmtree(sandbox, ignore_errors=True)
    return sandbox


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _tour(root: Path, say: Callable[[str], None]) -> None:
    say(f"sandbox: {root}")
    (root / "liftgate.toml").write_text(CONFIG)
    docs = root / "docs"
    staged = root / ".m2m" / "staged"
    docs.mkdir()
    staged.mkdir(parents=True)
    (docs / "README.md").write_text("# M2M v1.0\nthe live document, version 1\n")
    (docs / "MY_README.md").write_text("# M2M v1.0\na neighbour whose name ends like the target\n")
    (staged / "README_M2M.md").write_text("# M2M v1.0\nthe live document, version 2\n")
    project = Project.open(cwd=root)
    try:
        say("1. dry run: the plan and the diff, nothing changes")
        dry = promote(project, ".m2m/staged/README_M2M.md", "docs/README.md", dry_run=True)
        say(f"   {dry.status}: {dry.message}")
        for line in (dry.extra.get("diff") or "").splitlines():
            say(f"   | {line}")

        say("2. promote the staged file (backup by hard link, atomic replace, verify, history)")
        res = promote(project, ".m2m/staged/README_M2M.md", "docs/README.md")
        say(f"   {res.status}: {res.message}")
        say(f"   backup {res.backup_path}")
        say(f"   evidence {res.evidence_path}")
        say(f"   live now: {(docs / 'README.md').read_text().splitlines()[1]!r}")

        say("3. a staged file that fails the verification rule is refused before any change")
        (staged / "BAD.md").write_text("no marker here\n")
        try:
            promote(project, ".m2m/staged/BAD.md", "docs/README.md")
        except GuardrailError as exc:
            say(f"   refused: {exc}")

        say("4. a hand edit of the live file is drift: a promotion will not overwrite it")
        original = (docs / "README.md").read_bytes()
        (docs / "README.md").write_text("# M2M v1.0\nedited by hand\n")
        try:
            promote(project, ".m2m/staged/README_M2M.md", "docs/README.md")
        except DriftError as exc:
            say(f"   refused: {exc}")
        (docs / "README.md").write_bytes(original)

        say("5. roll back: the backup is chosen from the history by exact path and sha256")
        back = rollback(project, "docs/README.md")
        say(f"   {back.status}: {back.message}")
        say(f"   live now: {(docs / 'README.md').read_text().splitlines()[1]!r}")
        say(f"   MY_README.md untouched: {(docs / 'MY_README.md').read_text().splitlines()[1]!r}")

        say("6. a whole folder, switched with one atomic exchange")
        (root / "site").mkdir()
        (root / "site" / "index.html").write_text("<h1>v1</h1>\n")
        (staged / "site").mkdir()
        (staged / "site" / "index.html").write_text("<h1>v2</h1>\n")
        (staged / "site" / "about.html").write_text("<p>new page</p>\n")
        dry_dir = promote(project, ".m2m/staged/site", "site", dry_run=True)
        for entry in (dry_dir.extra.get("changes") or {}).get("entries", []):
            say(f"   dry run: {entry['change']} {entry['path']}")
        res_dir = promote(project, ".m2m/staged/site", "site")
        say(f"   {res_dir.status}: {res_dir.message}; files: {_names(root / 'site')}")
        back_dir = rollback(project, "site")
        say(f"   {back_dir.status}: {back_dir.message}; files: {_names(root / 'site')}")

        say("7. history verify: the hash chain and its head in the ops store")
        report = project.history.verify()
        say(f"   {'OK' if report.ok else 'FAIL'}: {report.count} lines, head {report.head}")

        say("8. evidence verify: every run's bundle against its MANIFEST.sha256")
        for result in (res, back, res_dir, back_dir):
            assert result.evidence_path is not None
            problems = verify_bundle(Path(result.evidence_path))
            say(f"   {result.run_id}: {'OK' if not problems else 'FAIL ' + problems[0]}")
        if not report.ok:
            raise GuardrailError("the demo's history does not verify")
    finally:
        project.close()
    from liftgate.demo_odoo import odoo_tour

    odoo_tour(root, say)
