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

    [files]
    allow_no_backup = false

    [[files.verify]]
    glob = "docs/**.md"
    starts_with = "# M2M v1.0"
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from liftgate.errors import ConfigError

__all__ = [
    "CONFIG_NAME",
    "Config",
    "EnvSettings",
    "FilesSettings",
    "Settings",
    "VerifyRule",
    "load_config",
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
    allow_no_backup: bool = False
    verify: list[VerifyRule] = Field(default_factory=list)


class PostgresSettings(_Model):
    """``[postgres]``: the libpq conninfo shared by every environment (no password here,
    ideally: it may come from odoo.conf, ``PGPASSWORD`` or ``~/.pgpass``)."""

    dsn: str | None = None


class EnvSettings(_Model):
    """``[env.NAME]``: one Odoo environment (database + filestore)."""

    role: Literal["production", "staging", "dev"]
    db: str | None = Field(default=None, min_length=1, max_length=63)
    filestore: str | None = None
    dsn: str | None = None
    odoo_conf: str | None = None
    neutralize: bool | None = None

    @property
    def wants_neutralize(self) -> bool:
        """Neutralize copies restored here: default true unless this is production."""
        return self.neutralize if self.neutralize is not None else self.role != "production"


class ArtifactsSettings(_Model):
    dir: str | None = None


class RedactionSettings(_Model):
    patterns: list[str] = Field(default_factory=list)


class Settings(_Model):
    """The parsed file, before paths are resolved."""

    project: ProjectSettings = Field(default_factory=ProjectSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    files: FilesSettings = Field(default_factory=FilesSettings)
    redaction: RedactionSettings = Field(default_factory=RedactionSettings)
    postgres: PostgresSettings = Field(default_factory=PostgresSettings)
    env: dict[str, EnvSettings] = Field(default_factory=dict)
    artifacts: ArtifactsSettings = Field(default_factory=ArtifactsSettings)


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
