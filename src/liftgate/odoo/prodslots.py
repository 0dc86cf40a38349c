"""A production env with two slots (blue, green) behind a traffic switch.

The switch is the source of truth for which slot serves production: liftgate reads it
(which server HAProxy routes to, which upstream nginx names, where the symlink points), so
an existing production needs no set-up step. Each slot is addressed as ``<env>.<slot>``
(``prod.blue``) wherever an env name is taken (backup, restore, status).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from liftgate.engine.project import Project
from liftgate.envconfig import EnvSettings
from liftgate.errors import ConfigError
from liftgate.odoo.deploy import DeploySpec
from liftgate.odoo.env import OdooEnv, resolve_env
from liftgate.switch import TrafficSwitch, make_switch

__all__ = ["SLOTS", "ProdSlots", "Slot", "other"]

Slot = Literal["blue", "green"]
SLOTS: tuple[Slot, Slot] = ("blue", "green")


def other(slot: Slot) -> Slot:
    return "green" if slot == "blue" else "blue"


@dataclass(frozen=True)
class ProdSlots:
    name: str
    settings: EnvSettings
    switch: TrafficSwitch

    @classmethod
    def resolve(cls, project: Project, name: str) -> ProdSlots:
        settings = project.config.settings.env.get(name)
        if settings is None:
            known = ", ".join(sorted(project.config.settings.env)) or "none"
            raise ConfigError(f"there is no environment {name!r} in liftgate.toml (known: {known})")
        if settings.slots is None or settings.switch is None:
            raise ConfigError(
                f"env.{name} has no blue/green slots and switch; promotion needs "
                f"[env.{name}.slots.blue], [env.{name}.slots.green] and [env.{name}.switch]"
            )
        if settings.role != "production":
            raise ConfigError(
                f"env.{name} has slots but its role is {settings.role}, not production"
            )
        return cls(name, settings, make_switch(settings.switch, project.config.base_dir))

    def env(self, project: Project, slot: Slot) -> OdooEnv:
        return resolve_env(project, f"{self.name}.{slot}")

    def spec(self, project: Project, slot: Slot) -> DeploySpec:
        """The slot's code settings (releases, odoo_bin, odoo.conf, service, url)."""
        assert self.settings.slots is not None
        return DeploySpec.build(
            project, self.env(project, slot), self.settings.slots[slot], self.settings
        )

    def active(self) -> Slot:
        return self.switch.active()
