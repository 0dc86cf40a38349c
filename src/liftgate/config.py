"""``liftgate.toml``: where it is found, what it may hold, and the defaults without one.

Found from the working directory upward, or given with ``--config``. Without one, liftgate
works in the current directory: root ``.``, state dir ``.liftgate/`` (ops store, history,
backups and evidence inside it). Relative paths in the file are relative to the file's folder.

Example::

    [project]
    roots = ["docs", ".m2m/staged"]
    state_dir = ".liftgate"

    [store]
    ops_dsn = "host=/run/postgresql dbname=liftgate"   # optional: share state between hosts

    [durability]
    flush = "filesystem"   # one syncfs per flush point, for a disk liftgate has to itself

    [[files.verify]]
    glob = "docs/**.md"
    starts_with = "# M2M v1.0"

The file-promotion sections (``[project]``, ``[store]``, ``[durability]``, ``[files]``,
``[redaction]``, ``[artifacts]``, ``[skills]``) are checked here with the standard library;
the Odoo sections (``[postgres]``, ``[odoo]``, ``[env.NAME]``) by the pydantic models of
``liftgate.envconfig``, loaded only when the file has one of them. A project that only
promotes files so never imports pydantic: its commands start in a fraction of the time.
"""

from __future__ import annotations

import functools
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Literal, NamedTuple, TypeVar, cast

from liftgate.errors import ConfigError

if TYPE_CHECKING:
    from liftgate.envconfig import EnvSettings, OdooSections, OdooSettings, PostgresSettings

__all__ = [
    "CONFIG_NAME",
    "FLUSH_MODES",
    "ArtifactsSettings",
    "Config",
    "DurabilitySettings",
    "FilesSettings",
    "ProjectSettings",
    "RedactionSettings",
    "Settings",
    "SkillsSettings",
    "StoreSettings",
    "VerifyRule",
    "load_config",
    "parse_duration",
]

CONFIG_NAME = "liftgate.toml"

_ODOO_SECTIONS = ("postgres", "env", "odoo")
_PARSES_AS = ("yaml", "json", "toml")


def _invalid(where: str, what: str) -> ConfigError:
    """One problem in the file: where (dotted) and what; load_config adds the file's path."""
    return ConfigError(f"{where}: {what}")


T = TypeVar("T")


def _table(raw: object, where: str, keys: tuple[str, ...]) -> Mapping[str, object]:
    if not isinstance(raw, dict):
        raise _invalid(where, "must be a table")
    for key in raw:
        if key not in keys:
            raise _invalid(f"{where}.{key}", f"unknown key (known: {', '.join(keys)})")
    return cast(Mapping[str, object], raw)


def _str(table: Mapping[str, object], key: str, where: str, default: T) -> str | T:
    if key not in table:
        return default
    value = table[key]
    if not isinstance(value, str):
        raise _invalid(f"{where}.{key}", "must be a string")
    return value


def _strs(
    table: Mapping[str, object], key: str, where: str, default: tuple[str, ...]
) -> tuple[str, ...]:
    if key not in table:
        return default
    value = table[key]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _invalid(f"{where}.{key}", "must be a list of strings")
    return tuple(value)


class ProjectSettings(NamedTuple):
    roots: tuple[str, ...] = (".",)
    state_dir: str = ".liftgate"
    evidence_dir: str | None = None


class StoreSettings(NamedTuple):
    ops_dsn: str | None = None


class VerifyRule(NamedTuple):
    """One ``[[files.verify]]`` rule: files matching ``glob`` must pass every check given."""

    glob: str
    starts_with: str | None = None
    contains: str | None = None
    regex: str | None = None
    parses_as: Literal["yaml", "json", "toml"] | None = None

    def problem(self) -> str | None:
        """Why this rule cannot be used (None when it can)."""
        if not any((self.starts_with, self.contains, self.regex, self.parses_as)):
            return f"rule for {self.glob!r} needs starts_with, contains, regex or parses_as"
        if self.parses_as is not None and self.parses_as not in _PARSES_AS:
            return f"parses_as must be one of {', '.join(_PARSES_AS)}"
        if self.regex is not None:
            try:
                re.compile(self.regex)
            except re.error as exc:
                return f"regex {self.regex!r} does not compile: {exc}"
        return None

    @classmethod
    def from_dict(cls, raw: object, where: str = "rule") -> VerifyRule:
        """A rule from its ``[[files.verify]]`` table; ConfigError naming ``where`` if wrong."""
        keys = ("glob", "starts_with", "contains", "regex", "parses_as")
        table = _table(raw, where, keys)
        glob = _str(table, "glob", where, None)
        if glob is None:
            raise _invalid(f"{where}.glob", "is required")
        values = {key: _str(table, key, where, None) for key in keys[1:]}
        rule = cls(glob=glob, **values)  # type: ignore[arg-type]
        problem = rule.problem()
        if problem is not None:
            raise _invalid(where, problem)
        return rule


class DurabilitySettings(NamedTuple):
    """``[durability]``: ``flush`` is ``"files"`` (an fsync per written file and folder, the
    default) or ``"filesystem"`` (one syncfs per file system); see
    ``liftgate.engine.durability``."""

    flush: str = "files"


class FilesSettings(NamedTuple):
    verify: tuple[VerifyRule, ...] = ()


class ArtifactsSettings(NamedTuple):
    dir: str | None = None


class RedactionSettings(NamedTuple):
    patterns: tuple[str, ...] = ()


class SkillsSettings(NamedTuple):
    """``[skills]``: ``registry`` is the project's override of the shipped skill registry
    (a YAML file, relative to liftgate.toml's folder; see ``liftgate.skills.registry``)."""

    registry: str | None = None


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """``"90s"``, ``"5m"``, ``"24h"``, ``"250ms"`` (a bare number is seconds) → seconds."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration like '90s', '5m' or '24h'")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2) or "s"]


class Settings(NamedTuple):
    """The parsed file, before paths are resolved."""

    project: ProjectSettings = ProjectSettings()
    store: StoreSettings = StoreSettings()
    durability: DurabilitySettings = DurabilitySettings()
    files: FilesSettings = FilesSettings()
    redaction: RedactionSettings = RedactionSettings()
    artifacts: ArtifactsSettings = ArtifactsSettings()
    skills: SkillsSettings = SkillsSettings()
    # [postgres], [odoo] and [env.*], validated at load when the file has one of them
    odoo_sections: OdooSections | None = None

    @property
    def _odoo(self) -> OdooSections:
        return self.odoo_sections if self.odoo_sections is not None else _no_odoo_sections()

    @property
    def env(self) -> dict[str, EnvSettings]:
        return self._odoo.env

    @property
    def odoo(self) -> OdooSettings:
        return self._odoo.odoo

    @property
    def postgres(self) -> PostgresSettings:
        return self._odoo.postgres


@functools.cache
def _no_odoo_sections() -> OdooSections:
    """The Odoo sections' defaults, for a file without any (built once, on first use)."""
    from liftgate.envconfig import OdooSections

    return OdooSections()


def _odoo_sections(raw: Mapping[str, object]) -> OdooSections | None:
    present = {name: raw[name] for name in _ODOO_SECTIONS if name in raw}
    if not present:
        return None
    from pydantic import ValidationError

    from liftgate.envconfig import OdooSections

    try:
        return OdooSections.model_validate(present)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "file"
        raise _invalid(where, err["msg"]) from None


_FILE_SECTIONS = ("project", "store", "durability", "files", "redaction", "artifacts", "skills")
FLUSH_MODES = ("files", "filesystem")  # [durability] flush, the default first


def parse_settings(raw: Mapping[str, object]) -> Settings:
    """Check a parsed liftgate.toml; ``ConfigError`` naming the first problem (``key: what``)."""
    known = (*_FILE_SECTIONS, *_ODOO_SECTIONS)
    for key in raw:
        if key not in known:
            raise _invalid(key, f"unknown section (known: {', '.join(known)})")

    def section(name: str, *keys: str) -> Mapping[str, object]:
        return _table(raw.get(name, {}), name, keys)

    project = section("project", "roots", "state_dir", "evidence_dir")
    files = section("files", "verify")
    rules = files.get("verify", [])
    if not isinstance(rules, list):
        raise _invalid("files.verify", "must be an array of tables ([[files.verify]])")
    flush = _str(section("durability", "flush"), "flush", "durability", FLUSH_MODES[0])
    if flush not in FLUSH_MODES:
        raise _invalid("durability.flush", f'must be "files" or "filesystem", not {flush[:40]!r}')
    patterns = _strs(section("redaction", "patterns"), "patterns", "redaction", ())
    for n, pattern in enumerate(patterns):
        try:
            re.compile(pattern)
        except re.error as exc:
            raise _invalid(f"redaction.patterns.{n}", f"does not compile: {exc}") from None
    return Settings(
        project=ProjectSettings(
            roots=_strs(project, "roots", "project", (".",)),
            state_dir=_str(project, "state_dir", "project", ".liftgate"),
            evidence_dir=_str(project, "evidence_dir", "project", None),
        ),
        store=StoreSettings(ops_dsn=_str(section("store", "ops_dsn"), "ops_dsn", "store", None)),
        durability=DurabilitySettings(flush=flush),
        files=FilesSettings(
            verify=tuple(VerifyRule.from_dict(r, f"files.verify.{n}") for n, r in enumerate(rules))
        ),
        redaction=RedactionSettings(patterns=patterns),
        artifacts=ArtifactsSettings(
            dir=_str(section("artifacts", "dir"), "dir", "artifacts", None)
        ),
        skills=SkillsSettings(
            registry=_str(section("skills", "registry"), "registry", "skills", None)
        ),
        odoo_sections=_odoo_sections(raw),
    )


class Config(NamedTuple):
    """Settings with every path resolved to an absolute, symlink-free path."""

    settings: Settings
    base_dir: Path
    path: Path | None
    roots: tuple[Path, ...]
    state_dir: Path
    evidence_dir: Path
    artifacts_dir: Path

    @property
    def files(self) -> FilesSettings:
        return self.settings.files

    @property
    def ops_dsn(self) -> str | None:
        return self.settings.store.ops_dsn


def find_config(start: Path) -> Path | None:
    """The nearest ``liftgate.toml`` in ``start`` or one of its parents."""
    for folder in (start, *start.parents):
        candidate = folder / CONFIG_NAME
        if candidate.is_file():
            return candidate
    return None


def load_config(path: Path | None = None, *, cwd: Path | None = None) -> Config:
    """Load ``path`` (or the nearest liftgate.toml above ``cwd``), or the defaults."""
    here = (cwd or Path.cwd()).resolve()
    if path is not None:
        path = (here / path).resolve()
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
    else:
        path = find_config(here)
    raw: dict[str, object] = {}
    if path is not None:
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read {path}: {exc}") from exc
    try:
        settings = parse_settings(raw)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc.message}") from None
    base = path.parent if path is not None else here
    roots = tuple((base / r).resolve() for r in settings.project.roots)
    if not roots:
        raise ConfigError(f"{path}: project.roots must name at least one folder")
    state_dir = (base / settings.project.state_dir).resolve()
    evidence = settings.project.evidence_dir
    evidence_dir = (base / evidence).resolve() if evidence else state_dir / "evidence"
    artifacts = settings.artifacts.dir
    artifacts_dir = (base / artifacts).resolve() if artifacts else state_dir / "artifacts"
    envs = settings.odoo_sections.env if settings.odoo_sections is not None else {}
    for name in envs:  # read from the file: the defaults need no check (nor pydantic)
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}", name):
            raise ConfigError(f"{path}: env name {name!r} must be letters, digits, '.', '_', '-'")
    return Config(
        settings=settings,
        base_dir=base,
        path=path,
        roots=roots,
        state_dir=state_dir,
        evidence_dir=evidence_dir,
        artifacts_dir=artifacts_dir,
    )
