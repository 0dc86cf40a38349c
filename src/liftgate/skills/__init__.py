"""Skills: the procedures liftgate ships for agents, and the registry that lists them.

Each skill is a folder beside this module holding a ``SKILL.md`` (Agent Skills format,
checked by ``liftgate.skills.skillmd``); ``registry.yaml`` lists them with their type,
version, requirements, guardrails and evidence (``liftgate.skills.registry``, schema
``registry.schema.json``); ``liftgate.skills.evidence`` names the evidence files each
operation writes; ``liftgate.skills.check`` is ``liftgate skills check``. The guardrail
values of a run are built by ``liftgate.engine.guardrails.Guardrails.for_skill``.
"""

from __future__ import annotations

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
