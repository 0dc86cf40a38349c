"""``liftgate skills check``: the shipped skills and registry, the project's override, and
a user's own skill folders — every violation, one line each."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from liftgate.skills.registry import (
    REGISTRY_PATH,
    Registry,
    check_override,
    check_registry,
    override_path,
)
from liftgate.skills.skillmd import SKILL_FILE, check_skill_md
from liftgate.skills.violations import Violation

if TYPE_CHECKING:
    from liftgate.config import Config

__all__ = ["CheckReport", "check_skills"]

REGISTRY_FILE = "registry.yaml"


@dataclass
class CheckReport:
    checked: list[Path] = field(default_factory=list)  # registries and SKILL.md files
    violations: list[Violation] = field(default_factory=list)
    _seen: set[Path] = field(default_factory=set)

    @property
    def ok(self) -> bool:
        return not self.violations

    def skill(self, path: Path) -> None:
        resolved = path.resolve()
        if resolved in self._seen:
            return
        self._seen.add(resolved)
        self.checked.append(path)
        self.violations += check_skill_md(path)[1]

    def registry(self, path: Path, known_ids: Sequence[str] = ()) -> Registry | None:
        self.checked.append(path)
        before = set(self._seen)
        registry, found = check_registry(path, known_ids=known_ids, seen=self._seen)
        self.checked += sorted(self._seen - before)
        self.violations += found
        return registry


def _user_path(report: CheckReport, path: Path, known_ids: Sequence[str]) -> None:
    """A skill folder, a folder of skill folders (with or without a registry.yaml), or a
    SKILL.md file."""
    path = path.absolute()
    if path.is_file() and path.name == SKILL_FILE:
        report.skill(path)
        return
    if not path.is_dir():
        what = "does not exist" if not path.exists() else "is not a folder or a SKILL.md"
        report.violations.append(Violation(path, "path", what))
        return
    if (path / SKILL_FILE).is_file():
        report.skill(path / SKILL_FILE)
        return
    found = False
    if (path / REGISTRY_FILE).is_file():
        report.registry(path / REGISTRY_FILE, known_ids)
        found = True
    for skill_md in sorted(path.glob(f"*/{SKILL_FILE}")):
        report.skill(skill_md)
        found = True
    if not found:
        report.violations.append(
            Violation(
                path, "path", f"holds no {SKILL_FILE}, no skill folder and no {REGISTRY_FILE}"
            )
        )


def check_skills(config: Config | None = None, paths: Sequence[Path] = ()) -> CheckReport:
    """Check the shipped skills and registry, the override of ``config`` (if any), and
    each of ``paths``."""
    report = CheckReport()
    shipped = report.registry(REGISTRY_PATH)
    known = list(shipped.skills) if shipped is not None else []
    extra = override_path(config) if config is not None else None
    if extra is not None:
        report.checked.append(extra)
        if shipped is None:
            report.violations.append(
                Violation(extra, "override", "cannot be checked: the shipped registry is invalid")
            )
        else:
            report.violations += check_override(extra, shipped)[1]
    for path in paths:
        _user_path(report, path, known)
    return report
