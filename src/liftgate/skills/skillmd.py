"""``SKILL.md`` files under the Agent Skills specification (agentskills.io/specification).

A skill is a folder holding a ``SKILL.md``: YAML frontmatter between a first line ``---``
and the next line ``---``, then a Markdown body. The frontmatter holds

* ``name`` (required): 1-64 characters, lowercase letters, digits and single hyphens (not
  at the start or the end), equal to the folder's name;
* ``description`` (required): 1-1024 characters, what the skill does and when to use it;
* optionally ``license`` (a string), ``compatibility`` (1-500 characters), ``metadata`` (a
  mapping of strings to strings) and ``allowed-tools`` (a space-delimited string);

and nothing else. The body stays under 500 lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from liftgate.skills.violations import Violation

__all__ = [
    "ALLOWED_KEYS",
    "MAX_BODY_LINES",
    "MAX_COMPATIBILITY",
    "MAX_DESCRIPTION",
    "MAX_NAME",
    "NAME_RE",
    "SKILL_FILE",
    "SkillDoc",
    "check_skill_md",
    "name_problems",
    "read_skill_md",
]

SKILL_FILE = "SKILL.md"
MAX_NAME = 64
MAX_DESCRIPTION = 1024
MAX_COMPATIBILITY = 500
MAX_BODY_LINES = 500  # the body must stay under this many lines
NAME_RE = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
ALLOWED_KEYS = ("name", "description", "license", "compatibility", "metadata", "allowed-tools")


@dataclass(frozen=True)
class SkillDoc:
    """A parsed SKILL.md: its frontmatter mapping and its body."""

    path: Path
    frontmatter: dict[str, Any]
    body: str

    @property
    def name(self) -> str:
        return str(self.frontmatter.get("name", ""))

    @property
    def description(self) -> str:
        return str(self.frontmatter.get("description", ""))

    @property
    def body_lines(self) -> int:
        return len(self.body.splitlines())


def read_skill_md(path: Path) -> tuple[SkillDoc | None, list[Violation]]:
    """Parse ``path``; a file that cannot be parsed gives no doc and its violations."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, [Violation(path, "skill-file", "does not exist")]
    except (OSError, UnicodeDecodeError) as exc:
        return None, [Violation(path, "skill-file", f"cannot be read: {exc}")]
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].rstrip("\r\n") != "---":
        return None, [Violation(path, "frontmatter", "the first line must be '---'")]
    close = next((i for i, ln in enumerate(lines[1:], 1) if ln.rstrip("\r\n") == "---"), None)
    if close is None:
        return None, [Violation(path, "frontmatter", "no closing '---' line")]
    try:
        data = yaml.safe_load("".join(lines[1:close]))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 2}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        return None, [Violation(path, "frontmatter", f"invalid YAML{where}: {problem}")]
    if not isinstance(data, dict):
        return None, [Violation(path, "frontmatter", "must be a YAML mapping")]
    return SkillDoc(path, data, "".join(lines[close + 1 :])), []


def name_problems(name: object) -> list[tuple[str, str]]:
    """``(rule, what)`` for each way ``name`` is not a valid skill name."""
    if not isinstance(name, str):
        return [("name", f"must be a string, not {name!r}")]
    if not name:
        return [("name", "must not be empty")]
    problems: list[tuple[str, str]] = []
    if len(name) > MAX_NAME:
        problems.append(("name-length", f"is {len(name)} characters long; the limit is {MAX_NAME}"))
    if NAME_RE.fullmatch(name):
        return problems
    if name != name.lower():
        what = f"{name!r} has uppercase letters; use lowercase letters, digits and hyphens"
    elif "--" in name:
        what = f"{name!r} has a double hyphen; hyphens must be single"
    elif name.startswith("-") or name.endswith("-"):
        what = f"{name!r} starts or ends with a hyphen"
    else:
        what = f"{name!r} may hold only lowercase letters a-z, digits and single hyphens"
    problems.append(("name", what))
    return problems


def _string_field(doc: SkillDoc, key: str, limit: int | None) -> list[Violation]:
    if key not in doc.frontmatter:
        return []
    value = doc.frontmatter[key]
    if not isinstance(value, str) or not value.strip():
        return [Violation(doc.path, key, f"must be a non-empty string, not {value!r}")]
    if limit is not None and len(value) > limit:
        return [
            Violation(
                doc.path, f"{key}-length", f"is {len(value)} characters long; the limit is {limit}"
            )
        ]
    return []


def check_skill_md(
    path: Path, folder: str | None = None
) -> tuple[SkillDoc | None, list[Violation]]:
    """Parse and check ``path``; ``folder``: the name the skill must have (default: the
    name of the folder holding the file)."""
    doc, violations = read_skill_md(path)
    if doc is None:
        return None, violations
    fm = doc.frontmatter
    expected = folder if folder is not None else path.parent.name
    for key in fm:
        if key not in ALLOWED_KEYS:
            violations.append(
                Violation(
                    path,
                    "frontmatter-keys",
                    f"unknown key {key!r} (allowed: {', '.join(ALLOWED_KEYS)})",
                )
            )
    if "name" not in fm:
        violations.append(Violation(path, "name", "is missing"))
    else:
        violations += [Violation(path, r, w) for r, w in name_problems(fm["name"])]
        if isinstance(fm["name"], str) and fm["name"] != expected:
            violations.append(
                Violation(
                    path, "name-folder", f"{fm['name']!r} is not the folder's name {expected!r}"
                )
            )
    if "description" not in fm:
        violations.append(Violation(path, "description", "is missing"))
    violations += _string_field(doc, "description", MAX_DESCRIPTION)
    violations += _string_field(doc, "license", None)
    violations += _string_field(doc, "compatibility", MAX_COMPATIBILITY)
    violations += _string_field(doc, "allowed-tools", None)
    if "metadata" in fm:
        meta = fm["metadata"]
        bad = (
            [
                f"{k!r}: {v!r}"
                for k, v in meta.items()
                if not isinstance(k, str) or not isinstance(v, str)
            ]
            if isinstance(meta, dict)
            else None
        )
        if bad is None:
            violations.append(Violation(path, "metadata", f"must be a mapping, not {meta!r}"))
        elif bad:
            violations.append(
                Violation(path, "metadata", f"keys and values must be strings: {bad[0]}")
            )
    if doc.body_lines >= MAX_BODY_LINES:
        violations.append(
            Violation(
                path,
                "body-length",
                f"the body has {doc.body_lines} lines; it must stay under {MAX_BODY_LINES}",
            )
        )
    return doc, violations
