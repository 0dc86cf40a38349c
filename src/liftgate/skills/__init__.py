"""Skills: the procedures liftgate ships for agents, and the registry that lists them.

Each skill is a folder beside this module holding a ``SKILL.md`` (Agent Skills format,
checked by ``liftgate.skills.skillmd``); ``registry.yaml`` lists them with their type,
version, requirements, guardrails and evidence (``liftgate.skills.registry``, schema
``registry.schema.json``); ``liftgate.skills.evidence`` names the evidence files each
operation writes; ``liftgate.skills.check`` is ``liftgate skills check``. The guardrail
values of a run are built by ``liftgate.engine.guardrails.Guardrails.for_skill``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from liftgate.skills.check import CheckReport, check_skills
    from liftgate.skills.evidence import EVIDENCE_FILES, EVIDENCE_WHEN_ROLLED_BACK
    from liftgate.skills.registry import (
        CAPABILITIES,
        REGISTRY_PATH,
        SCHEMA_PATH,
        SKILLS_DIR,
        Registry,
        SkillEntry,
        shipped_registry,
    )
    from liftgate.skills.violations import Violation

# imported on first use: every operation loads the registry, only `skills check` needs the
# checker (and jsonschema)
_WHERE = {
    "CheckReport": "check",
    "check_skills": "check",
    "EVIDENCE_FILES": "evidence",
    "EVIDENCE_WHEN_ROLLED_BACK": "evidence",
    "CAPABILITIES": "registry",
    "REGISTRY_PATH": "registry",
    "SCHEMA_PATH": "registry",
    "SKILLS_DIR": "registry",
    "Registry": "registry",
    "SkillEntry": "registry",
    "shipped_registry": "registry",
    "Violation": "violations",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"liftgate.skills.{module}"), name)


__all__ = [
    "CAPABILITIES",
    "EVIDENCE_FILES",
    "EVIDENCE_WHEN_ROLLED_BACK",
    "REGISTRY_PATH",
    "SCHEMA_PATH",
    "SKILLS_DIR",
    "CheckReport",
    "Registry",
    "SkillEntry",
    "Violation",
    "check_skills",
    "shipped_registry",
]
