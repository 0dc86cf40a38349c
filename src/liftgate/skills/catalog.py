"""What ``liftgate skills list`` and ``liftgate skills show`` report about shipped skills."""

from __future__ import annotations

from typing import Any

from liftgate.errors import UsageError
from liftgate.skills.registry import SkillEntry, shipped_registry, skill_doc

__all__ = ["describe", "list_skills", "show_skill"]


def _registry_entry(entry: SkillEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "type": entry.type,
        "version": entry.version,
        "domains": list(entry.domains),
        "requires": list(entry.requires),
        "guardrails": dict(entry.guardrails),
        "entrypoint": entry.entrypoint,
        "evidence": {
            "required": entry.evidence.required,
            "path_pattern": entry.evidence.path_pattern,
            "files": sorted(entry.evidence.files),
            "files_when_rolled_back": sorted(entry.evidence.files_when_rolled_back),
        },
    }


def describe(skill_id: str) -> dict[str, Any]:
    """One line of ``skills list``: id, version, type, description and where it is."""
    registry = shipped_registry()
    entry = registry.skills[skill_id]
    doc = skill_doc(registry, skill_id)
    return {
        "id": entry.id,
        "version": entry.version,
        "type": entry.type,
        "description": doc.description,
        "path": str(registry.entrypoint(skill_id)),
    }


def list_skills() -> list[dict[str, Any]]:
    """Every shipped skill, in registry order."""
    return [describe(skill_id) for skill_id in shipped_registry().skills]


def show_skill(name: str) -> dict[str, Any]:
    """One shipped skill: its SKILL.md (text, frontmatter, body) and its registry entry."""
    registry = shipped_registry()
    if name not in registry.skills:
        raise UsageError(
            f"there is no skill {name!r} (shipped: {', '.join(registry.skills)})",
            hint="liftgate skills list shows them",
        )
    doc = skill_doc(registry, name)
    return {
        "skill": name,
        "path": str(doc.path),
        "text": doc.path.read_text(encoding="utf-8"),
        "frontmatter": doc.frontmatter,
        "body": doc.body,
        "registry": _registry_entry(registry.skills[name]),
    }
