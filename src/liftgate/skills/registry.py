"""The skill registry (``registry.yaml``) and a project's override of it.

Shape (``format: liftgate.skills/v1``, JSON Schema in ``registry.schema.json``)::

    format: liftgate.skills/v1
    skills:
      - id: backup-odoo-environment          # = the SKILL.md's name and its folder
        type: procedural                     # procedural | knowledge
        version: "1.0.0"                     # semver
        domains: [odoo, postgresql, backup]
        requires: [ops_store, pg_tools]      # skill ids or capabilities (CAPABILITIES)
        guardrails:                          # name -> value (engine.guardrails.KNOWN)
          explicit_target: true
          retention_policy_default: {daily: 7, weekly: 4, monthly: 3}
        entrypoint: backup-odoo-environment/SKILL.md   # relative to the registry's folder
        evidence:
          required: true
          path_pattern: <evidence_dir>/<run_id>/
          files: [inputs.json, run_id.txt, ...]        # written by every run that ends
          files_when_rolled_back: []                   # added when it put the past back

A project's override (``[skills] registry`` in liftgate.toml) has the same shape but lists
only some shipped skills, each with ``id`` and only some of its ``guardrails``.

Besides the schema, ``check_registry`` checks that every ``requires`` resolves, that skills
do not require each other in a cycle, that guardrails are known with values of the right
type, that each entrypoint exists and its frontmatter is valid and names the skill, that
every skill folder beside the registry is registered, and that ``evidence`` lists exactly
the files liftgate writes (``liftgate.skills.evidence``).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from liftgate.engine.guardrails import KNOWN
from liftgate.errors import ConfigError, IntegrityError
from liftgate.skills.evidence import EVIDENCE_FILES, EVIDENCE_WHEN_ROLLED_BACK
from liftgate.skills.violations import Violation

if TYPE_CHECKING:
    from liftgate.config import Config
    from liftgate.skills.skillmd import SkillDoc

__all__ = [
    "CAPABILITIES",
    "FORMAT",
    "REGISTRY_PATH",
    "SCHEMA_PATH",
    "SKILLS_DIR",
    "EvidenceSpec",
    "Override",
    "ParseCache",
    "Registry",
    "SkillEntry",
    "check_override",
    "check_registry",
    "load_override",
    "override_path",
    "shipped_registry",
    "skill_doc",
]

FORMAT = "liftgate.skills/v1"
SKILLS_DIR = Path(__file__).resolve().parent
REGISTRY_PATH = SKILLS_DIR / "registry.yaml"
SCHEMA_PATH = SKILLS_DIR / "registry.schema.json"
CAPABILITIES = (
    "ops_store",
    "artifact_store",
    "runtime_executor",
    "pg_tools",
    "git",
    "traffic_switch",
)


class EvidenceSpec(NamedTuple):
    required: bool
    path_pattern: str | None
    files: frozenset[str]
    files_when_rolled_back: frozenset[str]


class SkillEntry(NamedTuple):
    """One skill of a registry, as written in it."""

    id: str
    type: str
    version: str
    domains: tuple[str, ...]
    requires: tuple[str, ...]
    guardrails: Mapping[str, Any]
    entrypoint: str
    evidence: EvidenceSpec
    raw: Mapping[str, Any]


class Registry(NamedTuple):
    path: Path
    skills: Mapping[str, SkillEntry]

    @property
    def folder(self) -> Path:
        return self.path.parent

    def entrypoint(self, skill_id: str) -> Path:
        return self.folder / self.skills[skill_id].entrypoint


class Override(NamedTuple):
    """A project's override: skill id -> the guardrails it changes."""

    path: Path
    guardrails: Mapping[str, Mapping[str, Any]]


# reading ------------------------------------------------------------------------------------
class ParseCache(NamedTuple):
    """Where parsed registries are kept (a folder of the state dir) and whether this
    caller may add to it (not a dry run: one changes nothing, the state dir included)."""

    folder: Path
    write: bool = False

    def file(self, raw: bytes) -> Path:
        return self.folder / f"yaml-{hashlib.sha256(raw).hexdigest()[:32]}.json"


def _keep(cached: Path, data: Any) -> None:
    """Keep ``data`` (parsed YAML) as JSON for the next process; only when JSON gives back
    exactly the same value, and silently not at all when the cache cannot be written."""
    from liftgate.engine.fsops import atomic_write_bytes

    try:
        payload = json.dumps(data, sort_keys=True)
        if json.loads(payload) != data:
            return
        cached.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        atomic_write_bytes(cached, payload.encode("utf-8"), mode=0o600, durable=False)
    except (TypeError, ValueError, OSError):
        return


def _read_yaml(path: Path, cache: ParseCache | None = None) -> tuple[Any, list[Violation]]:
    """The parsed YAML file, or the violation that stops it being read.

    With ``cache``, a file read before is taken from the JSON kept in its folder under the
    content's sha256 (the file's bytes are read and hashed each time, so an edit is seen at
    once): an operation then needs neither PyYAML nor its parse. A file parsed here is
    kept when ``cache.write``."""
    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8")
    except FileNotFoundError:
        return None, [Violation(path, "registry", "does not exist")]
    except (OSError, UnicodeDecodeError) as exc:
        return None, [Violation(path, "registry", f"cannot be read: {exc}")]
    if cache is not None:
        cached = cache.file(raw)
        with contextlib.suppress(OSError, ValueError):
            return json.loads(cached.read_bytes()), []
    import yaml

    try:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present
        data = yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        return None, [Violation(path, "yaml", f"invalid YAML{where}: {problem}")]
    if cache is not None and cache.write:
        _keep(cached, data)
    return data, []


@functools.cache
def _schema() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return data


def _validator(definition: str) -> Any:
    from jsonschema import Draft202012Validator  # type: ignore[import-untyped,unused-ignore]

    schema = _schema()
    root = {"$schema": schema["$schema"], "$defs": schema["$defs"], "$ref": definition}
    return Draft202012Validator(root)


def _where(data: Any, path: Iterable[Any]) -> str:
    parts: list[str] = []
    node = data
    for key in path:
        if isinstance(key, int):
            label = f"[{key}]"
            if parts == ["skills"] and isinstance(node, list) and isinstance(node[key], dict):
                ident = node[key].get("id")
                label += f" ({ident})" if isinstance(ident, str) else ""
            parts.append(label)
        else:
            parts.append(f".{key}" if parts else str(key))
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            node = None
    return "".join(parts) or "top level"


def _schema_violations(path: Path, data: Any, definition: str) -> list[Violation]:
    out = []
    errors = sorted(_validator(definition).iter_errors(data), key=lambda e: list(e.absolute_path))
    for err in errors:
        described = err.schema.get("description") if isinstance(err.schema, dict) else None
        if err.validator == "pattern" and described:
            message = f"{err.instance!r} is not {described}"
        else:
            message = err.message
        out.append(Violation(path, "schema", f"{_where(data, err.absolute_path)}: {message}"))
    return out


def _entry(raw: Mapping[str, Any]) -> SkillEntry:
    ev = raw["evidence"]
    return SkillEntry(
        id=raw["id"],
        type=raw["type"],
        version=raw["version"],
        domains=tuple(raw["domains"]),
        requires=tuple(raw["requires"]),
        guardrails=dict(raw["guardrails"]),
        entrypoint=raw["entrypoint"],
        evidence=EvidenceSpec(
            required=ev["required"],
            path_pattern=ev.get("path_pattern"),
            files=frozenset(ev.get("files", ())),
            files_when_rolled_back=frozenset(ev.get("files_when_rolled_back", ())),
        ),
        raw=raw,
    )


# semantic checks ----------------------------------------------------------------------------
def _guardrail_violations(
    path: Path, skill_id: str, guardrails: Mapping[str, Any], declared: Mapping[str, Any] | None
) -> list[Violation]:
    out = []
    for name, value in guardrails.items():
        spec = KNOWN.get(name)
        if spec is None:
            out.append(
                Violation(
                    path,
                    "guardrail-unknown",
                    f"skill {skill_id}: guardrail {name!r} is not known to liftgate "
                    f"(known: {', '.join(KNOWN)})",
                )
            )
            continue
        problem = spec.problem(value)
        if problem is not None:
            out.append(
                Violation(path, "guardrail-type", f"skill {skill_id}: guardrail {name} {problem}")
            )
        if declared is not None and name not in declared:
            out.append(
                Violation(
                    path,
                    "guardrail-undeclared",
                    f"skill {skill_id}: guardrail {name} does not apply to this skill "
                    "(the shipped registry does not declare it)",
                )
            )
    return out


def _cycles(edges: Mapping[str, tuple[str, ...]]) -> list[list[str]]:
    """Every cycle of the requires graph (each once, starting at its smallest id)."""
    found: dict[tuple[str, ...], list[str]] = {}
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        trail.append(node)
        for nxt in edges.get(node, ()):
            if state.get(nxt) == 1:
                cycle = trail[trail.index(nxt) :]
                start = cycle.index(min(cycle))
                ring = cycle[start:] + cycle[:start]
                found.setdefault(tuple(ring), [*ring, ring[0]])
            elif nxt in edges and state.get(nxt) is None:
                visit(nxt, trail)
        trail.pop()
        state[node] = 2

    for node in edges:
        if state.get(node) is None:
            visit(node, [])
    return [found[key] for key in sorted(found)]


def _evidence_violations(path: Path, entry: SkillEntry) -> list[Violation]:
    ev = entry.evidence
    written = EVIDENCE_FILES.get(entry.id)
    if written is None:
        if ev.required:
            return [
                Violation(
                    path,
                    "evidence",
                    f"skill {entry.id}: evidence is required but no liftgate operation is known "
                    "to write evidence for this skill",
                )
            ]
        return []
    out = []
    if not ev.required:
        out.append(
            Violation(
                path, "evidence", f"skill {entry.id}: its runs write evidence: required: true"
            )
        )
    for key, listed, actual in (
        ("files", ev.files, written),
        ("files_when_rolled_back", ev.files_when_rolled_back, EVIDENCE_WHEN_ROLLED_BACK[entry.id]),
    ):
        if listed == actual:
            continue
        parts = []
        if actual - listed:
            parts.append(f"missing {', '.join(sorted(actual - listed))}")
        if listed - actual:
            parts.append(f"not written by liftgate: {', '.join(sorted(listed - actual))}")
        out.append(
            Violation(path, "evidence", f"skill {entry.id}: evidence.{key}: {'; '.join(parts)}")
        )
    return out


def _entrypoint_violations(
    registry: Registry, entry: SkillEntry, seen: set[Path]
) -> list[Violation]:
    path = registry.path
    target = (registry.folder / entry.entrypoint).resolve()
    if not target.is_relative_to(registry.folder.resolve()):
        return [
            Violation(
                path,
                "entrypoint",
                f"skill {entry.id}: entrypoint {entry.entrypoint} is outside the registry's folder",
            )
        ]
    if not target.is_file():
        return [
            Violation(
                path,
                "entrypoint",
                f"skill {entry.id}: entrypoint {entry.entrypoint} does not exist",
            )
        ]
    from liftgate.skills.skillmd import check_skill_md

    doc, out = check_skill_md(target)
    if target in seen:
        out = []
    seen.add(target)
    if doc is not None and doc.frontmatter.get("name") != entry.id:
        out.append(
            Violation(
                path,
                "entrypoint-name",
                f"skill {entry.id}: {entry.entrypoint} is named "
                f"{doc.frontmatter.get('name')!r}, not the skill's id",
            )
        )
    return out


def _unregistered(registry: Registry, seen: set[Path]) -> list[Violation]:
    from liftgate.skills.skillmd import SKILL_FILE, check_skill_md

    registered = {(registry.folder / e.entrypoint).resolve() for e in registry.skills.values()}
    out = []
    for skill_md in sorted(registry.folder.glob(f"*/{SKILL_FILE}")):
        resolved = skill_md.resolve()
        if resolved in registered:
            continue
        out.append(
            Violation(
                registry.path,
                "unregistered",
                f"skill folder {skill_md.parent.name} has no entry in {registry.path.name}",
            )
        )
        if resolved not in seen:
            seen.add(resolved)
            out += check_skill_md(resolved)[1]
    return out


def check_registry(
    path: Path, *, known_ids: Iterable[str] = (), seen: set[Path] | None = None
) -> tuple[Registry | None, list[Violation]]:
    """Check a full registry at ``path`` (its SKILL.md files included).

    ``known_ids``: skills that exist beyond this registry (the shipped ones, for a user's
    registry) and may be required. ``seen``: SKILL.md files already checked (each is
    reported once)."""
    seen = set() if seen is None else seen
    data, violations = _read_yaml(path)
    if violations:
        return None, violations
    violations = _schema_violations(path, data, "#/$defs/registry")
    if violations:
        return None, violations
    skills: dict[str, SkillEntry] = {}
    for raw in data["skills"]:
        if raw["id"] in skills:
            violations.append(
                Violation(path, "duplicate-id", f"skill {raw['id']} is listed more than once")
            )
            continue
        skills[raw["id"]] = _entry(raw)
    registry = Registry(path=path, skills=skills)
    resolvable = set(skills) | set(known_ids) | set(CAPABILITIES)
    for entry in skills.values():
        for need in entry.requires:
            if need not in resolvable:
                violations.append(
                    Violation(
                        path,
                        "requires",
                        f"skill {entry.id} requires {need!r}, which is neither a skill of the "
                        f"registry nor a capability ({', '.join(CAPABILITIES)})",
                    )
                )
        violations += _guardrail_violations(path, entry.id, entry.guardrails, None)
        violations += _entrypoint_violations(registry, entry, seen)
        violations += _evidence_violations(path, entry)
    edges = {e.id: tuple(r for r in e.requires if r in skills) for e in skills.values()}
    for cycle in _cycles(edges):
        violations.append(
            Violation(path, "cycle", f"skills require each other: {' -> '.join(cycle)}")
        )
    violations += _unregistered(registry, seen)
    return registry, violations


def check_override(
    path: Path, shipped: Registry, cache: ParseCache | None = None
) -> tuple[Override | None, list[Violation]]:
    """Check a project's override registry against the shipped one (``cache``: see
    ``_read_yaml``)."""
    data, violations = _read_yaml(path, cache)
    if violations:
        return None, violations
    violations = _schema_violations(path, data, "#/$defs/override_registry")
    if violations:
        return None, violations
    changes: dict[str, Mapping[str, Any]] = {}
    for raw in data["skills"]:
        skill_id = raw["id"]
        if skill_id in changes:
            violations.append(
                Violation(path, "duplicate-id", f"skill {skill_id} is listed more than once")
            )
            continue
        entry = shipped.skills.get(skill_id)
        if entry is None:
            violations.append(
                Violation(
                    path,
                    "override-skill",
                    f"skill {skill_id!r} is not a skill liftgate ships "
                    f"(shipped: {', '.join(shipped.skills)})",
                )
            )
            continue
        violations += _guardrail_violations(path, skill_id, raw["guardrails"], entry.guardrails)
        changes[skill_id] = dict(raw["guardrails"])
    return Override(path=path, guardrails=changes), violations


# loading ------------------------------------------------------------------------------------
def _summary(violations: list[Violation]) -> str:
    more = f" (and {len(violations) - 1} more)" if len(violations) > 1 else ""
    return violations[0].line() + more


@functools.cache
def shipped_registry(cache: ParseCache | None = None) -> Registry:
    """The registry liftgate ships, cached for the process.

    Loaded quickly, for every operation: its guardrails are checked here; its schema,
    SKILL.md files and evidence lists by ``liftgate skills check`` (and the test suite).
    ``cache``: where its parse is kept (see ``_read_yaml``).
    """
    data, violations = _read_yaml(REGISTRY_PATH, cache)
    skills: dict[str, SkillEntry] = {}
    if not violations:
        try:
            for raw in data["skills"]:
                entry = _entry(raw)
                skills[entry.id] = entry
                violations += _guardrail_violations(REGISTRY_PATH, entry.id, entry.guardrails, None)
        except (KeyError, TypeError, AttributeError) as exc:
            violations.append(Violation(REGISTRY_PATH, "schema", f"malformed entry ({exc!r})"))
    if violations:
        raise IntegrityError(
            f"the shipped skill registry is invalid: {_summary(violations)}",
            hint="run liftgate skills check",
        )
    return Registry(path=REGISTRY_PATH, skills=skills)


def override_path(config: Config) -> Path | None:
    """The project's override registry (``[skills] registry``), resolved; None if unset."""
    value = config.settings.skills.registry
    return (config.base_dir / value).resolve() if value else None


def load_override(path: Path, cache: ParseCache | None = None) -> Override:
    """The project's override, checked; ConfigError when it is invalid."""
    override, violations = check_override(path, shipped_registry(cache), cache)
    if override is None or violations:
        raise ConfigError(
            f"the skills registry override is invalid: {_summary(violations)}",
            hint="run liftgate skills check",
        )
    return override


def skill_doc(registry: Registry, skill_id: str) -> SkillDoc:
    """The parsed SKILL.md of a registered skill."""
    from liftgate.skills.skillmd import check_skill_md

    doc, violations = check_skill_md(registry.entrypoint(skill_id))
    if doc is None or violations:
        raise IntegrityError(
            f"the SKILL.md of {skill_id} is invalid: {_summary(violations)}",
            hint="run liftgate skills check",
        )
    return doc
