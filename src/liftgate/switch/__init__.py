"""Traffic switches: which of the two slots (blue, green) receives new requests.

The switch is the single source of truth for the active slot: ``active()`` reads it from
the switch itself (HAProxy's runtime state, nginx's upstream file, a symlink, a status
command), so an existing production needs no set-up step and nothing is remembered
between calls. ``activate(slot)`` makes ``slot`` the only one receiving new requests,
verifies it, and is idempotent.

Four kinds, one interface (``TrafficSwitch``), built from ``[env.X.switch]`` settings by
``make_switch``:

* ``haproxy`` — runtime API over the admin socket; no reload (``HaproxySwitch``);
* ``nginx`` — an upstream include file, ``nginx -t``, reload (``NginxSwitch``);
* ``symlink`` — an atomic symlink swap (``SymlinkSwitch``);
* ``command`` — your own ``activate``/``status`` argv (``CommandSwitch``).

Every failure is a ``SwitchError`` with a one-sentence message; bad settings are a
``ConfigError``. A switch does not lock: callers serialise cutovers of one env.
"""

from __future__ import annotations

import os
from pathlib import Path

from liftgate.envconfig import (
    CommandSwitchSettings,
    HaproxySwitchSettings,
    NginxSwitchSettings,
    SwitchSettings,
    SymlinkSwitchSettings,
)
from liftgate.errors import ConfigError

from .base import SLOTS, Cutover, Slot, TrafficSwitch, other
from .command import CommandSwitch
from .haproxy import HaproxySwitch
from .nginx import NginxSwitch
from .symlink import SymlinkSwitch

__all__ = [
    "SLOTS",
    "CommandSwitch",
    "Cutover",
    "HaproxySwitch",
    "NginxSwitch",
    "Slot",
    "SymlinkSwitch",
    "TrafficSwitch",
    "make_switch",
    "other",
]


def make_switch(settings: SwitchSettings, base_dir: Path) -> TrafficSwitch:
    """The switch ``settings`` describe; relative paths are taken from ``base_dir``."""
    base = Path(os.path.abspath(base_dir))
    if isinstance(settings, HaproxySwitchSettings):
        return HaproxySwitch(settings, base)
    if isinstance(settings, NginxSwitchSettings):
        return NginxSwitch(settings, base)
    if isinstance(settings, SymlinkSwitchSettings):
        return SymlinkSwitch(settings, base)
    if isinstance(settings, CommandSwitchSettings):
        return CommandSwitch(settings, base)
    raise ConfigError(f"unknown switch kind {getattr(settings, 'kind', settings)!r}")
