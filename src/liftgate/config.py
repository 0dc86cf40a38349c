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

        [[files.verify]]
    glob = "docs/**.md"
    starts_with = "# M2M v1.0"
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from liftgate.errors import ConfigError

__all__ = [
    "CONFIG_NAME",
    "CodeSettings",
    "Config",
    "EnvSettings",
    "FilesSettings",
    "OdooSettings",
    "ServiceCommands",
    "Settings",
    "SkillsSettings",
    "SlotSettings",
    "SmokeCheck",
    "StabilitySettings",
    "SwitchSettings",
    "VerifyRule",
    "load_config",
    "parse_duration",
]

CONFIG_NAME = "liftgate.toml"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProjectSettings(_Model):
    roots: list[str] = Field(default_factory=lambda: ["."])
    state_dir: str = ".liftgate"
    evidence_dir: str | None = None


class StoreSettings(_Model):
    ops_dsn: str | None = None


class VerifyRule(_Model):
    """One ``[[files.verify]]`` rule: files matching ``glob`` must pass every check given."""

    glob: str
    starts_with: str | None = None
    contains: str | None = None
    regex: str | None = None
    parses_as: Literal["yaml", "json", "toml"] | None = None

    @model_validator(mode="after")
    def _has_a_check(self) -> VerifyRule:
        if not any((self.starts_with, self.contains, self.regex, self.parses_as)):
            raise ValueError(
                f"rule for {self.glob!r} needs starts_with, contains, regex or parses_as"
            )
        if self.regex is not None:
            try:
                re.compile(self.regex)
            except re.error as exc:
                raise ValueError(f"regex {self.regex!r} does not compile: {exc}") from exc
        return self


class FilesSettings(_Model):
    verify: list[VerifyRule] = Field(default_factory=list)


class PostgresSettings(_Model):
    """``[postgres]``: the libpq conninfo shared by every environment (no password here,
    ideally: it may come from odoo.conf, ``PGPASSWORD`` or ``~/.pgpass``)."""

    dsn: str | None = None


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """``"90s"``, ``"5m"``, ``"24h"``, ``"250ms"`` (a bare number is seconds) → seconds."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration like '90s', '5m' or '24h'")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2) or "s"]


def _argv(value: list[str] | None, what: str) -> list[str] | None:
    if value is not None and (not value or not all(value)):
        raise ValueError(f"{what} must be a non-empty list of non-empty arguments (argv)")
    return value


class ServiceCommands(_Model):
    """``service = {start = [...], stop = [...], restart = [...]}``: argv lists, no shell."""

    start: list[str] | None = None
    stop: list[str] | None = None
    restart: list[str] | None = None
    status: list[str] | None = None

    @model_validator(mode="after")
    def _argvs(self) -> ServiceCommands:
        for name in ("start", "stop", "restart", "status"):
            _argv(getattr(self, name), f"service.{name}")
        return self

    def restart_argvs(self) -> list[list[str]]:
        """The commands that restart the service: ``restart``, else ``stop`` then ``start``."""
        if self.restart:
            return [self.restart]
        return [argv for argv in (self.stop, self.start) if argv]


class SmokeCheck(_Model):
    """One smoke check: GET ``path`` answers ``status`` and (optionally) contains a text."""

    path: str = Field(pattern=r"^/[^\s]*$")
    status: int = Field(default=200, ge=100, le=599)
    contains: str | None = None


class CodeSettings(_Model):
    """Keys an env and each production slot share (database, filestore, code, service)."""

    db: str | None = Field(default=None, min_length=1, max_length=63)
    filestore: str | None = None
    dsn: str | None = None
    odoo_conf: str | None = None
    releases: str | None = None
    odoo_bin: str | None = None
    update_command: list[str] | None = None
    service: ServiceCommands | None = None
    url: str | None = Field(default=None, pattern=r"^https?://")
    health_timeout: float = Field(default=60.0, gt=0, le=3600)
    update_timeout: float = Field(default=3600.0, gt=0)

    @model_validator(mode="after")
    def _update_argv(self) -> CodeSettings:
        _argv(self.update_command, "update_command")
        return self


class SlotSettings(CodeSettings):
    """``[env.prod.slots.blue]`` / ``[env.prod.slots.green]``."""


class HaproxySwitchSettings(_Model):
    kind: Literal["haproxy"]
    socket: str
    backend: str = Field(min_length=1)
    servers: dict[Literal["blue", "green"], str]
    state_file: str | None = None


class NginxSwitchSettings(_Model):
    kind: Literal["nginx"]
    upstream_file: str
    upstream_name: str = Field(default="odoo", pattern=r"^[A-Za-z0-9_.-]+$")
    test: list[str]
    reload: list[str]
    upstreams: dict[Literal["blue", "green"], str]
    # the nginx master's pid file: activate() then waits until the old workers have stopped
    # taking connections, and notices a reload the master refused
    pid_file: str | None = None


class SymlinkSwitchSettings(_Model):
    kind: Literal["symlink"]
    link: str
    targets: dict[Literal["blue", "green"], str]


class CommandSwitchSettings(_Model):
    """``activate = ["cmd", "{slot}"]`` makes a slot active; ``status`` prints the active one."""

    kind: Literal["command"]
    activate: list[str]
    status: list[str]


SwitchSettings = Annotated[
    HaproxySwitchSettings | NginxSwitchSettings | SymlinkSwitchSettings | CommandSwitchSettings,
    Field(discriminator="kind"),
]


class StabilitySettings(_Model):
    """``[env.prod.stability]``: how the public URL is watched after a cutover."""

    window: str = "5m"
    interval: str = "5s"
    max_error_rate: float = Field(default=0.01, ge=0, le=1)
    max_p95_ms: float = Field(default=2000.0, gt=0)
    health: str = Field(default="/web/health", pattern=r"^/")

    @model_validator(mode="after")
    def _durations(self) -> StabilitySettings:
        if parse_duration(self.interval) <= 0 or parse_duration(self.window) <= 0:
            raise ValueError("stability window and interval must be positive")
        return self


class EnvSettings(CodeSettings):
    """``[env.NAME]``: one Odoo environment (database + filestore, and its code and service)."""

    role: Literal["production", "staging", "dev"]
    neutralize: bool | None = None
    repo: str | None = None
    smoke: list[SmokeCheck] = Field(default_factory=list)
    keep_releases: int = Field(default=5, ge=2, le=100)
    slots: dict[Literal["blue", "green"], SlotSettings] | None = None
    switch: SwitchSettings | None = None
    stability: StabilitySettings = Field(default_factory=StabilitySettings)
    rollback_window: str = "24h"
    approval: Literal["required", "auto"] = "required"

    @model_validator(mode="after")
    def _production_rules(self) -> EnvSettings:
        hours = parse_duration(self.rollback_window) / 3600
        if not 1 <= hours <= 168:
            raise ValueError("rollback_window must be between 1h and 168h")
        if self.role == "production" and self.approval != "required":
            raise ValueError("approval must be 'required' on a production env")
        if self.slots is not None:
            if set(self.slots) != {"blue", "green"}:
                raise ValueError("slots needs both blue and green")
            if self.switch is None:
                raise ValueError("an env with slots needs a switch")
        return self

    @property
    def wants_neutralize(self) -> bool:
        """Neutralize copies restored here: default true unless this is production."""
        return self.neutralize if self.neutralize is not None else self.role != "production"


class OdooSettings(_Model):
    """``[odoo]``: settings every env shares."""

    enterprise_modules: list[str] = Field(default_factory=list)
    series: str | None = Field(default=None, pattern=r"^\d+\.\d+$")


class ArtifactsSettings(_Model):
    dir: str | None = None


class RedactionSettings(_Model):
    patterns: list[str] = Field(default_factory=list)


class SkillsSettings(_Model):
    """``[skills]``: ``registry`` is the project's override of the shipped skill registry
    (a YAML file, relative to liftgate.toml's folder; see ``liftgate.skills.registry``)."""

    registry: str | None = None


class Settings(_Model):
    """The parsed file, before paths are resolved."""

    project: ProjectSettings = Field(default_factory=ProjectSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    files: FilesSettings = Field(default_factory=FilesSettings)
    redaction: RedactionSettings = Field(default_factory=RedactionSettings)
    postgres: PostgresSettings = Field(default_factory=PostgresSettings)
    env: dict[str, EnvSettings] = Field(default_factory=dict)
    odoo: OdooSettings = Field(default_factory=OdooSettings)
    artifacts: ArtifactsSettings = Field(default_factory=ArtifactsSettings)
    skills: SkillsSettings = Field(default_factory=SkillsSettings)


@dataclass(frozen=True)
class Config:
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


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "file"
    return f"{where}: {err['msg']}"


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
        settings = Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {_first_error(exc)}") from None
    base = path.parent if path is not None else here
    roots = tuple((base / r).resolve() for r in settings.project.roots)
    if not roots:
        raise ConfigError(f"{path}: project.roots must name at least one folder")
    state_dir = (base / settings.project.state_dir).resolve()
    evidence = settings.project.evidence_dir
    evidence_dir = (base / evidence).resolve() if evidence else state_dir / "evidence"
    artifacts = settings.artifacts.dir
    artifacts_dir = (base / artifacts).resolve() if artifacts else state_dir / "artifacts"
    for name in settings.env:
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
