"""The HAProxy switch: two servers of one backend, driven over the runtime API.

The active slot is the one of the two servers whose administrative state is READY (no
maintenance, no drain), read with ``show servers state <backend>``. A cutover:

1. sets the new server READY; if it has health checks, forces it DOWN until ``rise`` fresh
   checks in a row pass (HAProxy pauses checks in maintenance and would call it UP on stale
   results), and puts it back in MAINT, traffic left where it was, if a check fails — so
   with checks a cutover takes about ``rise`` x ``inter``;
2. puts the old server in MAINT. There is no reload: clients' keep-alive connections to
   HAProxy stay open and requests already sent to the old server finish there;
3. reads the state back.

HAProxy forgets runtime changes on a reload or restart unless it loads them from a state
file (``server-state-file`` + ``load-server-state-from-file``): with ``state_file`` set,
every ``activate`` writes ``show servers state`` (every backend) to it, atomically.
"""

from __future__ import annotations

import os
import socket
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from liftgate.engine.fsops import atomic_write_bytes
from liftgate.envconfig import HaproxySwitchSettings
from liftgate.errors import ConfigError, SwitchError

from .base import (
    SLOTS,
    Cutover,
    Slot,
    check_writable_file,
    ms_since,
    other,
    resolve_path,
    slot_map,
)

__all__ = ["HaproxySwitch", "ServerState"]

# srv_admin_state bits (include/haproxy/server-t.h): forced, inherited and DNS maintenance,
# forced and inherited drain. CMAINT (0x04, "disabled" in the config) only records where
# the server started; HMAINT (0x40) is not a maintenance state either.
_MAINT = 0x01 | 0x02 | 0x20
_DRAIN = 0x08 | 0x10
_OP_STOPPED = 0
_OP_NAMES = {0: "DOWN", 1: "STARTING", 2: "UP", 3: "STOPPING"}
# srv_check_state bits and srv_check_result values (include/haproxy/check-t.h)
_CHK_ST_ENABLED = 0x04
_CHK_RES_UNKNOWN = 0
_CHK_RES_FAILED = 2
_CHK_RESULTS = {0: "none yet", 1: "neutral", 2: "failed", 3: "passed", 4: "passed (conditional)"}
SOCKET_TIMEOUT = 5.0
# how long a cutover waits for a health-checked server to pass `rise` checks in a row
HEALTH_WAIT = 30.0


@dataclass(frozen=True)
class ServerState:
    """One server's line of ``show servers state``."""

    name: str
    op_state: int
    admin_state: int
    weight: int
    check_state: int = 0
    check_result: int = _CHK_RES_UNKNOWN

    @property
    def checked(self) -> bool:
        """Whether HAProxy health-checks this server."""
        return bool(self.check_state & _CHK_ST_ENABLED)

    @property
    def ready(self) -> bool:
        return not self.admin_state & (_MAINT | _DRAIN)

    @property
    def label(self) -> str:
        if self.admin_state & _MAINT:
            return "MAINT"
        if self.admin_state & _DRAIN:
            return "DRAIN"
        return "READY"

    def as_dict(self) -> dict[str, Any]:
        return {
            "admin": self.label,
            "health": _OP_NAMES.get(self.op_state, str(self.op_state)),
            "weight": self.weight,
            "check": _CHK_RESULTS.get(self.check_result, str(self.check_result))
            if self.checked
            else None,
        }


class HaproxySwitch:
    kind: str = "haproxy"

    def __init__(
        self,
        settings: HaproxySwitchSettings,
        base_dir: Path,
        *,
        timeout: float = SOCKET_TIMEOUT,
        health_wait: float = HEALTH_WAIT,
    ) -> None:
        self.socket_path = resolve_path(base_dir, settings.socket)
        if not _valid_name(settings.backend):
            raise ConfigError(f"the HAProxy backend name {settings.backend!r} is not valid")
        self.backend = settings.backend
        self.servers = slot_map(settings.servers, "HAProxy servers")
        self.state_file = (
            resolve_path(base_dir, settings.state_file) if settings.state_file else None
        )
        self.timeout = timeout
        self.health_wait = health_wait

    # -- the interface ------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "socket": str(self.socket_path),
            "backend": self.backend,
            "servers": dict(self.servers),
            "state_file": str(self.state_file) if self.state_file else None,
        }

    def active(self) -> Slot:
        return self._judge(self.states())

    def check(self) -> None:
        level = self._command("show cli level").strip()
        if level != "admin":
            shown = level.splitlines()[0] if level else "nothing"
            raise SwitchError(
                f"the HAProxy socket {self.socket_path} answers {shown!r} to 'show cli level'; "
                "switching slots needs a socket with 'level admin'"
            )
        self.states()
        if self.state_file is not None:
            check_writable_file(self.state_file, "the HAProxy state file")

    def activate(self, slot: Slot) -> Cutover:
        started = time.perf_counter()
        if slot not in SLOTS:
            raise SwitchError(f"{slot!r} is not a slot (blue or green)")
        before = self.states()
        ready = [s for s in SLOTS if before[s].ready]
        previous: Slot | None = ready[0] if len(ready) == 1 else None
        new, old = self.servers[slot], self.servers[other(slot)]
        commands: list[str] = []
        changed = ready != [slot]
        if changed:
            if not before[slot].ready:
                commands.append(self._set(new, "ready"))
            problem = self._health_problem(slot, just_ready=not before[slot].ready)
            if problem is not None:
                if not before[slot].ready:  # leave the new server as it was
                    self._set(new, "drain" if before[slot].label == "DRAIN" else "maint")
                raise SwitchError(
                    f"HAProxy's health check of {self.backend}/{new} {problem}, so traffic "
                    f"stays on {self.backend}/{old}"
                )
            if before[other(slot)].label != "MAINT":
                commands.append(self._set(old, "maint"))
        after = self.states()
        if not after[slot].ready or after[other(slot)].ready:
            raise SwitchError(
                f"after the switch HAProxy reports {self.backend}/{new} "
                f"{after[slot].label} and {self.backend}/{old} {after[other(slot)].label}, "
                f"not {new} alone READY"
            )
        switched_ms = ms_since(started)
        if self.state_file is not None:
            self._save_state(self.state_file, slot)
        return Cutover(
            slot=slot,
            previous=previous,
            elapsed_ms=ms_since(started),
            changed=changed,
            detail={
                "backend": self.backend,
                "commands": commands,
                "before": {s: before[s].as_dict() for s in SLOTS},
                "after": {s: after[s].as_dict() for s in SLOTS},
                "switched_ms": switched_ms,
                "state_file": str(self.state_file) if self.state_file else None,
            },
        )

    # -- HAProxy ------------------------------------------------------------------------

    def states(self) -> dict[Slot, ServerState]:
        """The two slots' servers, as ``show servers state <backend>`` reports them."""
        text = self._command(f"show servers state {self.backend}")
        header: list[str] | None = None
        found: dict[str, ServerState] = {}
        for line in text.splitlines():
            if line.startswith("#"):
                header = line[1:].split()
                continue
            fields = line.split()
            if header is None or len(fields) < len(header):
                continue
            row = dict(zip(header, fields, strict=False))
            try:
                if row["be_name"] != self.backend:
                    continue
                found[row["srv_name"]] = ServerState(
                    name=row["srv_name"],
                    op_state=int(row["srv_op_state"]),
                    admin_state=int(row["srv_admin_state"]),
                    weight=int(row.get("srv_uweight", "1")),
                    check_state=int(row.get("srv_check_state", "0")),
                    check_result=int(row.get("srv_check_result", "0")),
                )
            except (KeyError, ValueError) as exc:
                raise SwitchError(
                    f"HAProxy's 'show servers state' output has an unexpected format: {line!r}"
                ) from exc
        if header is None:
            shown = text.strip().splitlines()[0] if text.strip() else "nothing"
            if "find backend" in shown:
                raise SwitchError(f"HAProxy has no backend named {self.backend!r}")
            raise SwitchError(f"HAProxy answered {shown!r} to 'show servers state {self.backend}'")
        out: dict[Slot, ServerState] = {}
        for slot in SLOTS:
            name = self.servers[slot]
            if name not in found:
                raise SwitchError(
                    f"HAProxy backend {self.backend!r} has no server {name!r} (the {slot} slot)"
                )
            out[slot] = found[name]
        return out

    def _judge(self, states: dict[Slot, ServerState]) -> Slot:
        ready = [s for s in SLOTS if states[s].ready]
        if len(ready) == 1:
            return ready[0]
        names = " and ".join(f"{self.servers[s]} ({states[s].label})" for s in SLOTS)
        if ready:
            raise SwitchError(
                f"both slots receive traffic: {names} are both READY in HAProxy backend "
                f"{self.backend!r}"
            )
        raise SwitchError(
            f"no slot receives traffic: neither of {names} is READY in HAProxy backend "
            f"{self.backend!r}"
        )

    def _health_problem(self, slot: Slot, *, just_ready: bool) -> str | None:
        """None once ``slot``'s server is fit for traffic, else what is wrong.

        A server without health checks is fit. HAProxy pauses checks in maintenance and
        calls a server UP the moment it leaves it, on stale results: so a checked server
        that just left maintenance is forced DOWN (the old server still takes the traffic)
        and must come UP again through ``rise`` fresh checks in a row.
        """
        state = self.states()[slot]
        if not state.checked:
            return None if state.op_state != _OP_STOPPED else "reports it DOWN"
        if not just_ready:
            return None if state.op_state != _OP_STOPPED else "fails"
        self._run(f"set server {self.backend}/{self.servers[slot]} health down")
        last = self.states()[slot].check_result
        deadline = time.monotonic() + self.health_wait
        while True:
            state = self.states()[slot]
            if state.op_state != _OP_STOPPED:
                return None
            if state.check_result == _CHK_RES_FAILED and last != _CHK_RES_FAILED:
                return "fails"
            last = state.check_result
            if time.monotonic() > deadline:
                return f"did not pass within {self.health_wait:g} s"
            time.sleep(0.01)

    def _set(self, server: str, state: str) -> str:
        return self._run(f"set server {self.backend}/{server} state {state}")

    def _run(self, command: str) -> str:
        """A runtime API command that answers nothing when it works."""
        answer = self._command(command).strip()
        if answer:
            raise SwitchError(f"HAProxy refused '{command}': {answer.splitlines()[0]}")
        return command

    def _save_state(self, link: Path, slot: Slot) -> None:
        path = Path(os.path.realpath(link))  # a symlinked state file stays a symlink
        text = self._command("show servers state")
        if not text.startswith("1\n"):
            raise SwitchError(
                f"HAProxy's 'show servers state' did not return a state file; {path} "
                f"was not written, so a reload would not keep {slot} active"
            )
        try:
            mode = stat.S_IMODE(os.stat(path).st_mode)
        except FileNotFoundError:
            mode = 0o644
        except OSError as exc:
            raise _state_write_error(path, slot, exc) from exc
        try:
            atomic_write_bytes(path, text.encode(), mode=mode)
        except OSError as exc:
            raise _state_write_error(path, slot, exc) from exc

    def _command(self, line: str) -> str:
        """One runtime API command over the admin socket (non-interactive: one per connection)."""
        path = self.socket_path
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(str(path))
            sock.sendall(line.encode() + b"\n")
            chunks: list[bytes] = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except FileNotFoundError as exc:
            raise SwitchError(f"there is no HAProxy admin socket at {path}") from exc
        except ConnectionRefusedError as exc:
            raise SwitchError(
                f"nothing answers on the HAProxy admin socket {path} (is HAProxy running?)"
            ) from exc
        except PermissionError as exc:
            raise SwitchError(f"liftgate may not open the HAProxy admin socket {path}") from exc
        except TimeoutError as exc:
            raise SwitchError(
                f"HAProxy did not answer on {path} within {self.timeout:g} s"
            ) from exc
        except OSError as exc:
            raise SwitchError(
                f"the HAProxy admin socket {path} cannot be used: {exc.strerror or exc}"
            ) from exc
        finally:
            sock.close()
        return b"".join(chunks).decode("utf-8", "replace")


def _valid_name(name: str) -> bool:
    # the runtime API splits on blanks and ';': such a name could smuggle in a command
    return bool(name) and all(c.isalnum() or c in "_.:-" for c in name)


def _state_write_error(path: Path, slot: Slot, exc: OSError) -> SwitchError:
    return SwitchError(
        f"{slot} is active but the HAProxy state file {path} could not be written "
        f"({exc.strerror or exc}), so a reload would bring back the old slot"
    )
