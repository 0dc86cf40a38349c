"""The Odoo side of ``liftgate.toml``: ``[postgres]``, ``[odoo]`` and ``[env.NAME]``.

Validated with pydantic by ``liftgate.config.load_config`` when the file has one of these
sections; a project that only promotes files never imports this module (nor pydantic), so
its commands start quickly. Field meanings are documented in ``liftgate.config``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from liftgate.config import parse_duration

__all__ = [
    "CodeSettings",
    "CommandSwitchSettings",
    "EnvSettings",
    "HaproxySwitchSettings",
    "NginxSwitchSettings",
    "OdooSections",
    "OdooSettings",
    "PostgresSettings",
    "ServiceCommands",
    "SlotSettings",
    "SmokeCheck",
    "StabilitySettings",
    "SwitchSettings",
    "SymlinkSwitchSettings",
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PostgresSettings(_Model):
    """``[postgres]``: the libpq conninfo shared by every environment (no password here,
    ideally: it may come from odoo.conf, ``PGPASSWORD`` or ``~/.pgpass``)."""

    dsn: str | None = None


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


class OdooSections(_Model):
    """The sections of liftgate.toml this module validates, as one model."""

    postgres: PostgresSettings = Field(default_factory=PostgresSettings)
    env: dict[str, EnvSettings] = Field(default_factory=dict)
    odoo: OdooSettings = Field(default_factory=OdooSettings)
