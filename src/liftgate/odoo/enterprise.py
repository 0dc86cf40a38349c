"""Which addons of a repository are Odoo Enterprise, or need it (guardrail
``forbid_enterprise_modules``).

An addon is refused ("offending") when

* its licence is ``OEEL-1`` (the Odoo Enterprise Edition licence), even if it is not
  installable (the reason says so); ``OPL-1`` (Odoo Proprietary Licence, paid third-party
  apps) is *not* Enterprise;
* it depends directly on an Enterprise module (the list of the series, in
  ``data/enterprise_modules.json``, plus the names given in ``extra_enterprise``); or
* it depends, directly or through other addons of the repository, on an addon of the
  repository that is refused.

A dependency is looked up first among the addons of the repository (they shadow any other
module of that name, as the first addons path does in Odoo), then in the Enterprise list,
then among the Community core addons (``data/community_modules.json``, and every
``l10n_*`` name not in the Enterprise list) and the ``known`` names (for instance every
module ``ir_module_module`` lists). A dependency found nowhere is reported as
``unresolved``: it is not treated as Enterprise. An addon of the repository whose own name
is an Enterprise name (OCA's former ``account_avatax``, say) is reported in ``shadowing``,
not refused: only its licence and dependencies count.

The lists come from public copies of the translation configuration of the odoo/enterprise
and odoo/odoo repositories; their ``_source`` key says exactly which, and where they are
incomplete. An unknown series (``saas~17.2``, ``20.0``) uses the union of every known list.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from liftgate.errors import ConfigError
from liftgate.odoo.manifest import ModuleManifest

__all__ = [
    "ENTERPRISE_LICENSE",
    "EnterpriseReport",
    "check",
    "community_names",
    "enterprise_names",
    "is_community",
    "known_series",
]

ENTERPRISE_LICENSE = "OEEL-1"
_DATA = Path(__file__).with_name("data")
_MESSAGE_LIMIT = 10


@cache
def _load(name: str) -> Mapping[str, Any]:
    path = _DATA / name
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"Cannot read liftgate's module list {path}: {exc}.") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"Liftgate's module list {path} is not a JSON object.")
    return data


def _normal_series(series: str) -> str:
    series = series.strip()
    return f"{series}.0" if series.isdigit() else series


def _enterprise_lists() -> dict[str, frozenset[str]]:
    data = _load("enterprise_modules.json")
    return {k: frozenset(v) for k, v in data.items() if not k.startswith("_")}


def known_series() -> tuple[str, ...]:
    """The series that have their own Enterprise list, oldest first."""
    return tuple(sorted(_enterprise_lists(), key=lambda s: tuple(int(p) for p in s.split("."))))


def enterprise_names(series: str, extra: Iterable[str] = ()) -> frozenset[str]:
    """The Enterprise module names of ``series`` (``"17.0"``; ``"17"`` also works), plus
    ``extra``. An unknown series gets the union of every known list."""
    lists = _enterprise_lists()
    names = lists.get(_normal_series(series))
    if names is None:
        names = frozenset().union(*lists.values())
    return names | frozenset(extra)


def community_names(series: str, extra: Iterable[str] = ()) -> frozenset[str]:
    """The Odoo Community core module names, plus ``extra``, minus the Enterprise names of
    ``series``. The shipped list is the same for every series (see its ``_source``); the
    ``l10n_*`` prefix rule is applied by :func:`is_community`, not listed here."""
    names = frozenset(_load("community_modules.json").get("names", ()))
    return (names | frozenset(extra)) - enterprise_names(series)


def is_community(name: str, series: str) -> bool:
    """True for a Community core module name of ``series``, including any ``l10n_*`` name
    (the localisations) that is not an Enterprise name."""
    if name in enterprise_names(series):
        return False
    prefixes = tuple(_load("community_modules.json").get("prefixes", ()))
    return name in community_names(series) or (bool(prefixes) and name.startswith(prefixes))


@dataclass(frozen=True)
class EnterpriseReport:
    """The verdict of :func:`check` on the addons of one repository.

    ``offending`` maps each refused addon to its reasons (one sentence fragment each);
    ``unresolved`` maps each addon to the dependencies found nowhere; ``shadowing`` names
    the addons of the repository that carry an Enterprise module's name.
    """

    series: str
    offending: Mapping[str, tuple[str, ...]]
    unresolved: Mapping[str, tuple[str, ...]]
    shadowing: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.offending

    def message(self) -> str:
        """One sentence naming the refused addons (for the guardrail error)."""
        if self.ok:
            return (
                f"No addon of the repository is Odoo Enterprise or needs it (Odoo {self.series})."
            )
        items = [f"{name} ({'; '.join(why)})" for name, why in self.offending.items()]
        shown = items[:_MESSAGE_LIMIT]
        more = len(items) - len(shown)
        tail = f", and {more} more" if more else ""
        count = len(items)
        verb = (
            "addon is Odoo Enterprise or needs"
            if count == 1
            else "addons are Odoo Enterprise or need"
        )
        return f"{count} {verb} it (Odoo {self.series}): {', '.join(shown)}{tail}."

    def as_dict(self) -> dict[str, Any]:
        return {
            "series": self.series,
            "ok": self.ok,
            "offending": {k: list(v) for k, v in self.offending.items()},
            "unresolved": {k: list(v) for k, v in self.unresolved.items()},
            "shadowing": list(self.shadowing),
        }


def check(
    modules: Sequence[ModuleManifest],
    series: str,
    *,
    extra_enterprise: Iterable[str] = (),
    known: Iterable[str] = (),
) -> EnterpriseReport:
    """Judge the addons of one repository for Odoo ``series`` (see the module docstring).

    ``extra_enterprise`` adds Enterprise names (configuration); ``known`` adds names that
    resolve a dependency (for instance every module of the database's ``ir_module_module``).
    """
    enterprise = enterprise_names(series, extra_enterprise)
    known_set = frozenset(known)
    community = community_names(series)
    prefixes = tuple(_load("community_modules.json").get("prefixes", ()))
    repo = {m.name: m for m in modules}

    def resolved(dep: str) -> bool:
        return dep in known_set or dep in community or (bool(prefixes) and dep.startswith(prefixes))

    direct: dict[str, list[str]] = {}
    unresolved: dict[str, list[str]] = {}
    internal: dict[str, list[str]] = {}
    for m in sorted(modules, key=lambda m: m.name):
        note = "" if m.installable else ", though not installable"
        reasons: list[str] = []
        if m.license.strip().upper() == ENTERPRISE_LICENSE:
            reasons.append(f"licence {m.license}{note}")
        for dep in dict.fromkeys(m.depends):
            if dep in repo:
                if dep != m.name:
                    internal.setdefault(m.name, []).append(dep)
            elif dep in enterprise:
                reasons.append(f"depends on Enterprise module {dep}{note}")
            elif not resolved(dep):
                unresolved.setdefault(m.name, []).append(dep)
        if reasons:
            direct[m.name] = reasons

    # Refusal spreads through the repository's own dependencies (a fixpoint, so cycles
    # are harmless and a cycle with no Enterprise in it refuses nothing).
    refused = set(direct)
    changed = True
    while changed:
        changed = False
        for name, deps in internal.items():
            if name not in refused and any(d in refused for d in deps):
                refused.add(name)
                changed = True

    offending: dict[str, tuple[str, ...]] = {}
    for name in sorted(refused):
        note = "" if repo[name].installable else ", though not installable"
        spread = [
            f"depends on {d}, which is refused{note}"
            for d in internal.get(name, [])
            if d in refused
        ]
        offending[name] = (*direct.get(name, ()), *spread)

    return EnterpriseReport(
        series=_normal_series(series),
        offending=offending,
        unresolved={k: tuple(unresolved[k]) for k in sorted(unresolved)},
        shadowing=tuple(sorted(name for name in repo if name in enterprise)),
    )
