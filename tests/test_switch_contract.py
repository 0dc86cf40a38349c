"""One contract for every traffic switch (haproxy, nginx, symlink, command), on real proxies.

HAProxy and nginx run for real (tests/support/proxies.py) in front of two tiny HTTP/1.1
backends that answer their slot's name, so "the switch says green" is always checked
against "a request through the proxy reaches green". Missing haproxy or nginx fails the
suite (the conftest allows no skips).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter

from liftgate.envconfig import NginxSwitchSettings, SwitchSettings
from liftgate.errors import ConfigError, SwitchError
from liftgate.switch import (
    CommandSwitch,
    HaproxySwitch,
    NginxSwitch,
    Slot,
    TrafficSwitch,
    make_switch,
)
from liftgate.switch.nginx import MARKER_SUFFIX
from support.proxies import Haproxy, Nginx, TrafficClient, fetch_slot, slot_backends

KINDS = ["haproxy", "nginx", "symlink", "command"]
HUP = "import os, signal, sys; os.kill(int(open(sys.argv[1]).read()), signal.SIGHUP)"
PROXIES = ["haproxy", "nginx"]
_ADAPTER: TypeAdapter[SwitchSettings] = TypeAdapter(SwitchSettings)


def parse(raw: dict[str, Any]) -> SwitchSettings:
    return _ADAPTER.validate_python(raw)


def one_sentence(message: str) -> str:
    """``message`` is one sentence: one line, no sentence break, no final full stop."""
    assert message and "\n" not in message and message == message.strip(), message
    assert not re.search(r"[.!?]\s+[A-Z]", message) and not message.endswith("."), message
    return message


@dataclass
class Rig:
    """One switch kind, set up with blue active, and an independent way to see the truth."""

    kind: str
    base_dir: Path
    settings: dict[str, Any]
    observe: Callable[[], str]  # which slot really serves (a request, the link, the file)
    broken: Callable[[], dict[str, Any]]  # settings overrides (after a change) that fail check()
    check_words: str  # what check()'s message must mention
    make_ambiguous: Callable[[], None]
    proxy: Haproxy | Nginx | None = None

    def switch(self, **overrides: Any) -> TrafficSwitch:
        return make_switch(parse({**self.settings, **overrides}), self.base_dir)


def build_rig(kind: str, base: Path, stack: contextlib.ExitStack) -> Rig:
    base.mkdir(parents=True, exist_ok=True)
    if kind in PROXIES:
        backends = stack.enter_context(slot_backends())
        proxy: Haproxy | Nginx
        proxy = Haproxy(base, backends) if kind == "haproxy" else Nginx(base, backends)
        stack.callback(proxy.stop)
        proxy.start()
        port = proxy.port

        def through() -> str:
            return fetch_slot(port)

        if isinstance(proxy, Haproxy):
            hx = proxy
            return Rig(
                kind,
                base,
                hx.switch_settings(),
                through,
                lambda: {"socket": str(base / "no-such-admin.sock")},
                "no HAProxy admin socket",
                lambda: _expect_empty(hx.command(f"set server {hx.backend}/srv_green state ready")),
                proxy=hx,
            )
        nx = proxy

        def unknown_server() -> None:
            nx.upstream_file.write_text("upstream odoo {\n    server 127.0.0.1:1;\n}\n")

        return Rig(
            kind,
            base,
            nx.switch_settings(),
            through,
            lambda: {"upstream_file": "no-such-folder/upstream.conf"},
            "cannot be written",
            unknown_server,
            proxy=nx,
        )
    if kind == "symlink":
        for slot in ("blue", "green"):
            (base / "releases" / slot).mkdir(parents=True)
            (base / "releases" / slot / "SLOT").write_text(slot)
        os.symlink(base / "releases" / "blue", base / "current")
        (base / "elsewhere").mkdir()

        def remove_green() -> dict[str, Any]:
            shutil.rmtree(base / "releases" / "green")
            return {}

        def point_elsewhere() -> None:
            os.unlink(base / "current")
            os.symlink(base / "elsewhere", base / "current")

        return Rig(
            kind,
            base,
            {
                "kind": "symlink",
                "link": "current",
                "targets": {"blue": "releases/blue", "green": "releases/green"},
            },
            lambda: (base / "current" / "SLOT").read_text(),
            remove_green,
            "green target",
            point_elsewhere,
        )
    # command: `cp slots/<slot> active` switches, `cat active` tells
    (base / "slots").mkdir()
    for slot in ("blue", "green"):
        (base / "slots" / slot).write_text(f"{slot}\n")
    (base / "active").write_text("blue\n")

    def garbage() -> None:
        (base / "active").write_text("purple\n")

    return Rig(
        kind,
        base,
        {
            "kind": "command",
            "activate": ["cp", "slots/{slot}", "active"],
            "status": ["cat", "active"],
        },
        lambda: (base / "active").read_text().strip(),
        lambda: {"status": ["cat", "no-such-status-file"]},
        "status command cat failed",
        garbage,
    )


def _expect_empty(answer: str) -> None:
    assert not answer.strip(), answer


@pytest.fixture
def stack() -> Iterator[contextlib.ExitStack]:
    with contextlib.ExitStack() as exits:
        yield exits


@pytest.fixture(params=KINDS)
def rig(request: pytest.FixtureRequest, tmp_path: Path, stack: contextlib.ExitStack) -> Rig:
    return build_rig(request.param, tmp_path / "rig", stack)


@pytest.fixture(params=PROXIES)
def proxy_rig(request: pytest.FixtureRequest, tmp_path: Path, stack: contextlib.ExitStack) -> Rig:
    return build_rig(request.param, tmp_path / "rig", stack)


@pytest.fixture
def nginx_rig(tmp_path: Path, stack: contextlib.ExitStack) -> Rig:
    return build_rig("nginx", tmp_path / "rig", stack)


# ---------------------------------------------------------------------------------------
# the contract, for every kind
# ---------------------------------------------------------------------------------------


def test_reads_the_initial_state(rig: Rig) -> None:
    switch = rig.switch()
    assert switch.kind == rig.kind
    assert isinstance(switch, TrafficSwitch)
    described = switch.describe()
    assert described["kind"] == rig.kind
    json.dumps(described)
    switch.check()
    assert switch.active() == "blue"
    assert rig.observe() == "blue"


def test_activate_switches_verifies_and_is_idempotent(rig: Rig) -> None:
    cut = rig.switch().activate("green")
    assert (cut.slot, cut.previous, cut.changed) == ("green", "blue", True)
    assert cut.elapsed_ms > 0
    json.dumps(cut.to_dict())
    assert rig.observe() == "green"  # the very next request lands on the new slot
    # a new switch object knows it from the switch alone
    assert rig.switch().active() == "green"

    again = rig.switch().activate("green")
    assert (again.slot, again.previous, again.changed) == ("green", "green", False)
    assert rig.observe() == "green"

    back = rig.switch().activate("blue")
    assert (back.slot, back.previous, back.changed) == ("blue", "green", True)
    assert rig.observe() == "blue"
    assert rig.switch().active() == "blue"


def test_check_fails_with_one_clear_sentence(rig: Rig) -> None:
    overrides = rig.broken()
    with pytest.raises(SwitchError) as failed:
        rig.switch(**overrides).check()
    assert rig.check_words in one_sentence(failed.value.message)


def test_ambiguous_state_is_refused_and_activate_repairs_it(rig: Rig) -> None:
    rig.make_ambiguous()
    with pytest.raises(SwitchError) as failed:
        rig.switch().active()
    one_sentence(failed.value.message)
    cut = rig.switch().activate("blue")
    assert (cut.previous, cut.changed) == (None, True)
    assert rig.switch().active() == "blue"
    assert rig.observe() == "blue"


# ---------------------------------------------------------------------------------------
# the proxies: reloads and live traffic
# ---------------------------------------------------------------------------------------


def test_active_slot_survives_a_proxy_reload(proxy_rig: Rig) -> None:
    assert proxy_rig.proxy is not None
    proxy_rig.switch().activate("green")
    proxy_rig.proxy.reload()
    assert proxy_rig.switch().active() == "green"
    assert proxy_rig.observe() == "green"
    if isinstance(proxy_rig.proxy, Haproxy):  # a full restart loads the state file too
        proxy_rig.proxy.stop()
        proxy_rig.proxy.start()
        assert proxy_rig.switch().active() == "green"
        assert proxy_rig.observe() == "green"


def test_no_request_fails_during_cutovers(proxy_rig: Rig) -> None:
    proxy = proxy_rig.proxy
    assert proxy is not None
    # nginx closes idle keep-alive connections when it reloads: the client retries such a
    # request once, as browsers do; HAProxy needs no reload, so no retry is allowed there
    client = TrafficClient(proxy.port, retry_reused=isinstance(proxy, Nginx)).start()
    try:
        client.wait_for(20)
        switch = proxy_rig.switch()
        for n in range(10):
            slot: Slot = "green" if n % 2 == 0 else "blue"
            seen = client.stats.hits[slot]
            switch.activate(slot)
            deadline = time.monotonic() + 5
            while client.stats.hits[slot] < seen + 5 and time.monotonic() < deadline:
                time.sleep(0.002)
    finally:
        stats = client.stop()
    assert stats.failures == [], stats.failures
    assert stats.hits["blue"] >= 25 and stats.hits["green"] >= 25, stats
    assert set(stats.hits) == {"blue", "green"}
    if isinstance(proxy, Haproxy):
        assert stats.retries == 0


def test_haproxy_does_not_send_traffic_to_a_server_failing_its_health_check(
    tmp_path: Path, stack: contextlib.ExitStack
) -> None:
    """HAProxy pauses checks in maintenance and calls a server UP the moment it leaves it:
    the switch waits for the first check and leaves traffic where it was if it fails."""
    backends = stack.enter_context(slot_backends())
    hx = Haproxy(tmp_path, backends, checks=True)
    stack.callback(hx.stop)
    hx.start()
    settings = parse(hx.switch_settings())
    cut = make_switch(settings, tmp_path).activate("green")  # healthy: switched
    assert cut.detail["after"]["green"]["check"] == "passed"
    assert fetch_slot(hx.port) == "green"
    make_switch(settings, tmp_path).activate("blue")

    backends["green"].stop()
    with pytest.raises(SwitchError) as failed:
        make_switch(settings, tmp_path).activate("green")
    message = one_sentence(failed.value.message)
    assert "health check of be_odoo/srv_green fails" in message
    assert "traffic stays on be_odoo/srv_blue" in message
    assert make_switch(settings, tmp_path).active() == "blue"
    assert fetch_slot(hx.port) == "blue"


# ---------------------------------------------------------------------------------------
# nginx: a refused config or reload changes nothing
# ---------------------------------------------------------------------------------------


def _assert_untouched(rig: Rig, before: bytes) -> None:
    assert isinstance(rig.proxy, Nginx)
    upstream = rig.proxy.upstream_file
    assert upstream.read_bytes() == before
    assert not upstream.with_name(upstream.name + MARKER_SUFFIX).exists()
    assert rig.switch().active() == "blue"
    assert rig.observe() == "blue"


def test_nginx_config_test_failure_keeps_the_old_file(nginx_rig: Rig) -> None:
    assert isinstance(nginx_rig.proxy, Nginx)
    before = nginx_rig.proxy.upstream_file.read_bytes()
    bad_port = {"upstreams": {**nginx_rig.settings["upstreams"], "green": "127.0.0.1:99999"}}
    with pytest.raises(SwitchError) as failed:
        nginx_rig.switch(**bad_port).activate("green")
    message = one_sentence(failed.value.message)
    assert 'invalid port in upstream "127.0.0.1:99999"' in message
    assert "traffic stays on blue" in message
    _assert_untouched(nginx_rig, before)

    failing_test = [sys.executable, "-c", "import sys; sys.exit('emerg: the test says no')"]
    with pytest.raises(SwitchError) as failed:
        nginx_rig.switch(test=failing_test).activate("green")
    assert "emerg: the test says no" in one_sentence(failed.value.message)
    _assert_untouched(nginx_rig, before)


def test_nginx_reload_failure_puts_the_old_file_back(nginx_rig: Rig) -> None:
    assert isinstance(nginx_rig.proxy, Nginx)
    before = nginx_rig.proxy.upstream_file.read_bytes()
    with pytest.raises(SwitchError) as failed:
        nginx_rig.switch(reload=["false"]).activate("green")
    message = one_sentence(failed.value.message)
    assert "the nginx reload failed (false exited 1)" in message
    assert "failed too" in message  # the second reload is `false` as well
    _assert_untouched(nginx_rig, before)


def test_nginx_reload_the_master_refuses_is_noticed(nginx_rig: Rig) -> None:
    """`nginx -s reload` exits 0 even when the master then rejects the configuration: with
    pid_file the switch notices that no new worker started and puts the old file back."""
    nx = nginx_rig.proxy
    assert isinstance(nx, Nginx)
    before = nx.upstream_file.read_bytes()
    settings = parse(
        {
            **nginx_rig.settings,
            "test": ["true"],  # let the bad upstream through to the reload,
            # and only signal the master (`nginx -s reload` would parse the config first)
            "reload": [sys.executable, "-c", HUP, str(nx.pid_file)],
            "upstreams": {**nginx_rig.settings["upstreams"], "green": "127.0.0.1:99999"},
        }
    )
    assert isinstance(settings, NginxSwitchSettings)
    switch = NginxSwitch(settings, nginx_rig.base_dir, reload_wait=1.0)
    with pytest.raises(SwitchError) as failed:
        switch.activate("green")
    message = one_sentence(failed.value.message)
    assert "did not replace its workers" in message
    assert "nginx reloaded with it, so traffic stays on blue" in message
    _assert_untouched(nginx_rig, before)
    assert "invalid port" in nx.error_log.read_text()


def test_nginx_interrupted_cutover_is_refused_then_finished(nginx_rig: Rig) -> None:
    nx = nginx_rig.proxy
    assert isinstance(nx, Nginx)
    old = nx.upstream_file.read_bytes()
    marker = nx.upstream_file.with_name(nx.upstream_file.name + MARKER_SUFFIX)
    # what a crash between writing the file and reloading nginx leaves behind
    marker.write_bytes(old)
    green = nginx_rig.settings["upstreams"]["green"]
    blue = nginx_rig.settings["upstreams"]["blue"]
    nx.upstream_file.write_bytes(old.replace(blue.encode(), green.encode()))
    with pytest.raises(SwitchError) as failed:
        nginx_rig.switch().active()
    assert "interrupted" in one_sentence(failed.value.message)
    assert nginx_rig.observe() == "blue"
    cut = nginx_rig.switch().activate("green")
    assert (cut.previous, cut.changed) == (None, True)
    assert not marker.exists()
    assert nginx_rig.switch().active() == "green"
    assert nginx_rig.observe() == "green"


def test_nginx_missing_upstream_file_is_created(nginx_rig: Rig) -> None:
    nx = nginx_rig.proxy
    assert isinstance(nx, Nginx)
    nx.upstream_file.unlink()
    with pytest.raises(SwitchError, match="does not exist"):
        nginx_rig.switch().active()
    cut = nginx_rig.switch().activate("green")
    assert (cut.previous, cut.changed) == (None, True)
    assert "keepalive" in nx.upstream_file.read_text()
    assert nginx_rig.observe() == "green"
    assert nginx_rig.switch().active() == "green"


def test_nginx_rewrites_only_the_server_address(tmp_path: Path) -> None:
    """Comments, other blocks and the server line's parameters are kept byte for byte."""
    upstream = tmp_path / "odoo-upstream.conf"
    original = (
        "# server 10.0.0.1:1;  (a comment, not a server line)\n"
        "upstream longpolling { server 127.0.0.1:8072; }\n"
        "upstream odoo {\n"
        "    server 127.0.0.1:8069 max_fails=0 fail_timeout=5s;  # blue\n"
        "    keepalive 8;\n"
        "}\n"
    )
    upstream.write_text(original)
    settings = {
        "kind": "nginx",
        "upstream_file": upstream.name,
        "test": ["true"],
        "reload": ["true"],
        "upstreams": {"blue": "127.0.0.1:8069", "green": "[::1]:8169"},
    }
    switch = make_switch(parse(settings), tmp_path)
    assert switch.active() == "blue"
    cut = switch.activate("green")
    assert (cut.previous, cut.changed, cut.detail["verified"]) == ("blue", True, False)
    assert upstream.read_text() == original.replace("127.0.0.1:8069", "[::1]:8169")
    assert make_switch(parse(settings), tmp_path).active() == "green"
    upstream.write_text(original.replace("    keepalive", "    server 127.0.0.1:9;\n    keepalive"))
    with pytest.raises(SwitchError, match="has 2 server lines"):
        switch.active()


# ---------------------------------------------------------------------------------------
# settings
# ---------------------------------------------------------------------------------------


def test_relative_paths_are_taken_from_base_dir(tmp_path: Path) -> None:
    switch = make_switch(
        parse(
            {
                "kind": "haproxy",
                "socket": "run/admin.sock",
                "backend": "be",
                "servers": {"blue": "b", "green": "g"},
                "state_file": "state/haproxy.state",
            }
        ),
        tmp_path,
    )
    assert isinstance(switch, HaproxySwitch)
    assert switch.describe()["socket"] == str(tmp_path / "run" / "admin.sock")
    assert switch.describe()["state_file"] == str(tmp_path / "state" / "haproxy.state")
    command = make_switch(
        parse(
            {
                "kind": "command",
                "activate": ["bin/switch", "--to={slot}", "{slot}"],
                "status": ["x"],
            }
        ),
        tmp_path,
    )
    assert isinstance(command, CommandSwitch)
    assert command.argv_for("green") == [str(tmp_path / "bin" / "switch"), "--to=green", "green"]


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (
            {
                "kind": "haproxy",
                "socket": "s",
                "backend": "be",
                "servers": {"blue": "a", "green": "a"},
            },
            "the same",
        ),
        (
            {
                "kind": "haproxy",
                "socket": "s",
                "backend": "be; shutdown",
                "servers": {"blue": "a", "green": "b"},
            },
            "not valid",
        ),
        (
            {
                "kind": "nginx",
                "upstream_file": "u.conf",
                "test": ["nginx", "-t"],
                "reload": ["nginx", "-s", "reload"],
                "upstreams": {"blue": "127.0.0.1:1; include /etc/passwd", "green": "127.0.0.1:2"},
            },
            "not valid",
        ),
        ({"kind": "symlink", "link": "l", "targets": {"blue": "t", "green": "./t"}}, "the same"),
        ({"kind": "command", "activate": ["switch-to", "blue"], "status": ["s"]}, "{slot}"),
    ],
)
def test_bad_settings_are_config_errors(tmp_path: Path, raw: dict[str, Any], words: str) -> None:
    with pytest.raises(ConfigError) as failed:
        make_switch(parse(raw), tmp_path)
    assert words in one_sentence(failed.value.message)
