"""Guardrails: one registry of the enforcements liftgate knows, and their values per skill.

A guardrail is a named rule an operation enforces. Its value for a skill comes from the
shipped skill registry (``liftgate/skills/registry.yaml``), optionally changed by the
project's own override registry (``[skills] registry`` in liftgate.toml: the same YAML
shape, listing only some skills and only some of their guardrails). An override may make
a guardrail stronger freely; one that makes it weaker (a bool turned from true to false, a
retention count lowered) is honoured only when the command names it in
``--unsafe-guardrail NAME`` — otherwise planning fails with a ``GuardrailError`` naming the
guardrail, the override file and the flag. Every outcome is recorded, and ``as_json()`` is
the content of the run's ``guardrails.json``.

What each guardrail means for each operation (``-`` marks where it does not apply):

``explicit_target`` (bool)
    files promote/rollback: the live path is named with ``--target``; glob characters are
    refused and the path must resolve, symlinks included, inside ``[project] roots`` and
    outside the state folder — no default, no inference. odoo backup/restore/deploy/promote:
    the env (and for a restore the exact artifact id) is named on the command line; a
    restore over an existing database needs ``--force``.
``backup_before_write`` (bool)
    files promote/rollback: the target is backed up (hard link or copy) and the backup
    verified against the planned digest before the commit (invariant I1); ``--no-backup``
    only when this guardrail is off (override + ``--unsafe-guardrail``). odoo deploy: a way
    back is made before the update (a verified backup artifact on production; a
    ``TEMPLATE`` copy of the database and a hard-linked filestore copy on every env, D4).
    odoo promote: a staging snapshot and a verified backup artifact of blue before green
    is prepared.
    odoo backup, odoo restore: - (restore keeps the live env aside instead: see
    ``restore_never_drops_first``).
``history_required`` (bool)
    files promote/rollback: the hash-chained history line is written and fsynced before
    the run reports OK (I4). odoo operations: - (their record is the run in the ops store).
``verify_after_write`` (bool)
    files promote: the target must hold exactly the staged bytes and pass the
    ``[[files.verify]]`` rules after the switch (I5); rollback: the restored digest.
    odoo backup: every dump file is hashed after pg_dump wrote it and every blob checked
    against its sha1 name as it is stored. odoo restore: row counts, sequences and every
    referenced attachment of the new database are checked before the swap. odoo deploy:
    installed versions against the manifests, ``/web/health`` and the smoke checks.
    odoo promote: green's smoke tests before the cutover and the stability watch after.
``prod_requires_staging_success`` (bool)
    odoo promote: promotion preconditions 1-2 — staging's last deploy succeeded and staging
    runs the commit green will run. Elsewhere: -.
``forbid_enterprise_modules`` (bool)
    odoo deploy: a module with licence OEEL-1 or depending on an Odoo Enterprise module is
    refused before anything changes (D2). odoo promote: precondition 5 on staging's
    release. Elsewhere: -.
``rollback_default`` (bool)
    A failure puts the previous state back on its own, before the command returns. files
    promote: a failed post-write verification restores the backup (or removes a created
    target). odoo backup: the temp folder is removed, no partial artifact is listed. odoo
    restore: a failure before the swap drops what the run created; the live env is
    untouched. odoo deploy: database, filestore and ``current`` are put back from the way
    back and the service restarted (``rollback.json``). odoo promote: before the cutover
    green is torn down and blue unfrozen; after it an unstable green is switched back to
    blue at once (``rollback.json``).
``evidence_required`` (bool)
    Every run leaves ``<evidence_dir>/<run_id>/`` sealed by ``MANIFEST.sha256`` (I11);
    the files each operation writes are listed in ``liftgate.skills.evidence``.
``neutralize_non_production`` (bool)
    odoo restore: a restore into an env whose role is not ``production`` is neutralized
    (mail servers off plus the dummy ``invalid`` server, crons off but the autovacuum,
    webhooks, mail templates, payment providers, fetchmail) before anything can run on it.
    Elsewhere: -.
``restore_never_drops_first`` (bool)
    odoo restore: the artifact is restored into a new database, verified, then swapped in
    by renames; the previous database and filestore are kept (``<db>_pre_<suffix>``) for
    ``restore --rollback`` (O4). odoo promote: blue is never modified and green's previous
    database is set aside, not dropped, until the promotion succeeds. Elsewhere: -.
``retention_policy_default`` (``{daily: int, weekly: int, monthly: int}``)
    artifacts prune: the keep policy used when none is given (default 7/4/3). A lower
    count is weaker.

Operations call ``Guardrails.for_skill(project, skill_id, unsafe)`` while planning, then
``enabled``/``value``/``check``/``record`` as they enforce, and write ``as_json()``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from liftgate.config import Config
from liftgate.errors import ConfigError, GuardrailError, UsageError

if TYPE_CHECKING:
    from liftgate.engine.project import Project

__all__ = [
    "KNOWN",
    "OUTCOMES",
    "GuardrailSpec",
    "Guardrails",
    "ValueType",
]

ValueType = Literal["bool", "retention"]

# what an operation records for a guardrail
OUTCOMES = frozenset(
    {
        "enforced",  # checked and held
        "refused",  # checked, did not hold: the operation was refused
        "not_applicable",  # nothing to check in this run
        "disabled",  # off in the shipped registry for this skill
        "disabled_unsafe",  # turned off by the override, acknowledged with --unsafe-guardrail
    }
)

_RETENTION_KEYS = ("daily", "weekly", "monthly")


def _bool_problem(value: object) -> str | None:
    if isinstance(value, bool):
        return None
    return f"must be a boolean (true or false), not {value!r}"


def _retention_problem(value: object) -> str | None:
    if not isinstance(value, Mapping) or set(value) != set(_RETENTION_KEYS):
        return f"must be a mapping with exactly daily, weekly and monthly, not {value!r}"
    for key in _RETENTION_KEYS:
        count = value[key]
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            return f"{key} must be a count of 0 or more, not {count!r}"
    if not any(value[key] for key in _RETENTION_KEYS):
        return "keeps nothing (every count is 0), which would remove every artifact"
    return None


def _bool_weaker(value: Any, than: Any) -> bool:
    return bool(than) and not value


def _retention_weaker(value: Any, than: Any) -> bool:
    return any(int(value[k]) < int(than[k]) for k in _RETENTION_KEYS)


_PROBLEM: Mapping[ValueType, Callable[[object], str | None]] = {
    "bool": _bool_problem,
    "retention": _retention_problem,
}
_WEAKER: Mapping[ValueType, Callable[[Any, Any], bool]] = {
    "bool": _bool_weaker,
    "retention": _retention_weaker,
}


class GuardrailSpec(NamedTuple):
    """One guardrail liftgate knows: its value type, default and meaning."""

    name: str
    value_type: ValueType
    default: Any
    description: str

    def problem(self, value: object) -> str | None:
        """Why ``value`` is not a valid value of this guardrail (None when it is)."""
        return _PROBLEM[self.value_type](value)

    def weaker(self, value: Any, than: Any) -> bool:
        """True when ``value`` enforces less than ``than`` (both valid)."""
        return _WEAKER[self.value_type](value, than)

    def copy(self, value: Any) -> Any:
        """A copy of a value the caller may keep (mappings are copied)."""
        return dict(value) if isinstance(value, Mapping) else value


def _spec(name: str, value_type: ValueType, default: Any, description: str) -> GuardrailSpec:
    return GuardrailSpec(name, value_type, default, description)


KNOWN: Mapping[str, GuardrailSpec] = MappingProxyType(
    {
        s.name: s
        for s in (
            _spec(
                "explicit_target",
                "bool",
                True,
                "the target (path, env, artifact) is named explicitly: no glob, no default",
            ),
            _spec(
                "backup_before_write",
                "bool",
                True,
                "a verified way back exists before anything live is changed",
            ),
            _spec(
                "history_required",
                "bool",
                True,
                "the hash-chained history line is written and fsynced before OK",
            ),
            _spec(
                "verify_after_write",
                "bool",
                True,
                "what was written is verified before the run reports OK",
            ),
            _spec(
                "prod_requires_staging_success",
                "bool",
                True,
                "production receives only the commit staging deployed successfully and runs",
            ),
            _spec(
                "forbid_enterprise_modules",
                "bool",
                True,
                "Odoo Enterprise modules (OEEL-1 or depending on one) are refused",
            ),
            _spec(
                "rollback_default",
                "bool",
                True,
                "a failure puts the previous state back automatically",
            ),
            _spec(
                "evidence_required",
                "bool",
                True,
                "every run leaves an evidence bundle sealed by MANIFEST.sha256",
            ),
            _spec(
                "neutralize_non_production",
                "bool",
                True,
                "restores into non-production envs are neutralized (no mail, no crons)",
            ),
            _spec(
                "restore_never_drops_first",
                "bool",
                True,
                "a restore goes into a new database, verified, then swapped in; the old is kept",
            ),
            _spec(
                "retention_policy_default",
                "retention",
                MappingProxyType({"daily": 7, "weekly": 4, "monthly": 3}),
                "artifacts prune's default keep policy",
            ),
        )
    }
)


class _Entry(NamedTuple):
    spec: GuardrailSpec
    value: Any
    shipped: Any
    source: Literal["shipped", "override"]
    weakened: bool
    acknowledged: bool
    outcomes: list[dict[str, str]]


class Guardrails:
    """The guardrails of one skill for one run: effective values and recorded outcomes."""

    def __init__(
        self,
        skill_id: str,
        entries: Mapping[str, _Entry],
        *,
        registry: str | None,
        override: str | None,
        unsafe: Iterable[str],
    ) -> None:
        self.skill_id = skill_id
        self._entries = dict(entries)
        self.recorded = 0  # outcomes recorded so far: tells a run whether to write again
        self._registry = registry
        self._override = override
        self._unsafe = sorted(set(unsafe))

    # building ---------------------------------------------------------------------------
    @classmethod
    def for_skill(
        cls,
        project_or_config: Project | Config,
        skill_id: str,
        unsafe: Collection[str] = (),
        *,
        keep_parse: bool = False,
    ) -> Guardrails:
        """The guardrails of ``skill_id``: the shipped registry merged with the project's
        override (``[skills] registry``). Raises UsageError for a bad ``unsafe`` name and
        GuardrailError when the override weakens a guardrail ``unsafe`` does not name.

        The registries' parse is read from ``<state_dir>/cache`` when kept there, and kept
        there when ``keep_parse`` (an operation that writes state; never a dry run)."""
        from liftgate.skills.registry import (
            ParseCache,
            load_override,
            override_path,
            shipped_registry,
        )

        config = (
            project_or_config if isinstance(project_or_config, Config) else project_or_config.config
        )
        cache = ParseCache(config.state_dir / "cache", write=keep_parse)
        shipped = shipped_registry(cache)
        entry = shipped.skills.get(skill_id)
        if entry is None:
            raise UsageError(
                f"there is no skill {skill_id!r} in the shipped registry "
                f"(known: {', '.join(shipped.skills)})"
            )
        path = override_path(config)
        override = load_override(path, cache) if path is not None else None
        return cls.build(
            skill_id,
            entry.guardrails,
            override.guardrails.get(skill_id) if override is not None else None,
            registry=str(shipped.path),
            override_file=str(path) if path is not None else None,
            unsafe=unsafe,
        )

    @classmethod
    def build(
        cls,
        skill_id: str,
        shipped: Mapping[str, Any],
        changes: Mapping[str, Any] | None = None,
        *,
        registry: str | None = None,
        override_file: str | None = None,
        unsafe: Collection[str] = (),
    ) -> Guardrails:
        """Merge ``changes`` (the override's guardrails of this skill) over ``shipped``.

        The values are taken as validated by the registry loader; a name or value this
        module does not know is still refused here (ConfigError), so a caller cannot
        bypass the registry checks.
        """
        where = override_file or "the override registry"
        changes = changes or {}
        for name, value in [*shipped.items(), *changes.items()]:
            spec = KNOWN.get(name)
            if spec is None:
                raise ConfigError(f"skill {skill_id}: guardrail {name!r} is not known to liftgate")
            problem = spec.problem(value)
            if problem is not None:
                raise ConfigError(f"skill {skill_id}: guardrail {name} {problem}")
        for name in changes:
            if name not in shipped:
                raise ConfigError(
                    f"{where}: guardrail {name} does not apply to skill {skill_id} "
                    "(the shipped registry does not declare it)"
                )
        entries: dict[str, _Entry] = {}
        for name, base in shipped.items():
            spec = KNOWN[name]
            value = changes.get(name, base)
            weakened = spec.weaker(value, base)
            entries[name] = _Entry(
                spec=spec,
                value=spec.copy(value),
                shipped=spec.copy(base),
                source="override" if name in changes else "shipped",
                weakened=weakened,
                acknowledged=weakened and name in unsafe,
                outcomes=[],
            )
        cls._check_unsafe(skill_id, entries, unsafe, where)
        refused = [n for n, e in entries.items() if e.weakened and not e.acknowledged]
        if refused:
            flags = " ".join(f"--unsafe-guardrail {n}" for n in refused)
            detail = ", ".join(
                f"{n} ({_show(entries[n].shipped)} -> {_show(entries[n].value)})" for n in refused
            )
            raise GuardrailError(
                f"{where} weakens guardrail{'s' if len(refused) > 1 else ''} {detail} of skill "
                f"{skill_id}; refusing unless the command is given {flags}",
                hint=f"pass {flags} to accept that for this run (recorded in the evidence), "
                f"or remove the change from {where}",
            )
        return cls(skill_id, entries, registry=registry, override=override_file, unsafe=unsafe)

    @staticmethod
    def _check_unsafe(
        skill_id: str, entries: Mapping[str, _Entry], unsafe: Collection[str], where: str
    ) -> None:
        names = sorted(set(unsafe))
        for name in names:
            if name not in KNOWN:
                raise UsageError(
                    f"--unsafe-guardrail {name}: there is no such guardrail "
                    f"(known: {', '.join(KNOWN)})"
                )
        for name in names:
            if name not in entries:
                raise UsageError(
                    f"--unsafe-guardrail {name}: guardrail {name} does not apply to skill "
                    f"{skill_id}"
                )
        for name in names:
            if not entries[name].weakened:
                raise UsageError(
                    f"--unsafe-guardrail {name}: {where} does not weaken {name} for skill "
                    f"{skill_id}; there is nothing to acknowledge"
                )

    # asking -----------------------------------------------------------------------------
    @property
    def names(self) -> tuple[str, ...]:
        """The guardrails declared for this skill, in registry order."""
        return tuple(self._entries)

    def _entry(self, name: str) -> _Entry:
        try:
            return self._entries[name]
        except KeyError:
            raise KeyError(
                f"guardrail {name!r} is not declared for skill {self.skill_id} "
                f"(declared: {', '.join(self._entries)})"
            ) from None

    def value(self, name: str) -> Any:
        """The effective value of ``name`` (a copy for a mapping)."""
        entry = self._entry(name)
        return entry.spec.copy(entry.value)

    def enabled(self, name: str) -> bool:
        """The effective value of a bool guardrail."""
        entry = self._entry(name)
        if entry.spec.value_type != "bool":
            raise TypeError(f"guardrail {name} is not a bool; use value()")
        return bool(entry.value)

    # recording --------------------------------------------------------------------------
    def record(self, name: str, outcome: str, detail: str) -> None:
        """Record what happened to ``name`` in this run (see ``OUTCOMES``)."""
        entry = self._entry(name)
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown guardrail outcome {outcome!r} (known: {sorted(OUTCOMES)})")
        entry.outcomes.append({"outcome": outcome, "detail": detail})
        self.recorded += 1

    def hold(self, name: str, detail: str) -> None:
        """Record a guardrail this operation always holds. Turned off (acknowledged), it is
        still held — liftgate has no unsafe mode for it — and the record says so."""
        if self.enabled(name):
            self.record(name, "enforced", detail)
        else:
            self.record(name, "enforced", f"{detail} (turned off, still held: no unsafe mode)")

    def check(self, name: str, ok: bool, detail: str, *, hint: str | None = None) -> None:
        """Enforce a bool guardrail: record the outcome, and when it is enabled and ``ok``
        is false raise GuardrailError(``"<name>: <detail>"``). A disabled guardrail is
        recorded (``disabled`` or ``disabled_unsafe``) and never raises."""
        entry = self._entry(name)
        if self.enabled(name):
            self.record(name, "enforced" if ok else "refused", detail)
            if not ok:
                raise GuardrailError(f"{name}: {detail}", hint=hint)
            return
        outcome = "disabled_unsafe" if entry.acknowledged else "disabled"
        self.record(name, outcome, detail if ok else f"not enforced, would have refused: {detail}")

    def as_json(self) -> dict[str, Any]:
        """The content of the run's ``guardrails.json``."""
        return {
            "skill": self.skill_id,
            "registry": self._registry,
            "override": self._override,
            "unsafe": list(self._unsafe),
            "guardrails": {
                name: {
                    "value": e.spec.copy(e.value),
                    "shipped": e.spec.copy(e.shipped),
                    "source": e.source,
                    "weakened": e.weakened,
                    "unsafe_acknowledged": e.acknowledged,
                    "description": e.spec.description,
                    "outcomes": [dict(o) for o in e.outcomes],
                }
                for name, e in self._entries.items()
            },
        }


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "/".join(f"{k} {value[k]}" for k in _RETENTION_KEYS)
    return repr(value)
