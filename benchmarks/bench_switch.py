#!/usr/bin/env python3
"""Benchmark liftgate's traffic switches on a real HAProxy and a real nginx.

Two tiny HTTP/1.1 keep-alive backends answer their slot's name (blue, green) behind a
real proxy started for the run (``tests/support/proxies.py``: ``haproxy -W -db`` with an
admin socket and a server-state file; ``nginx -g 'daemon off;'`` with an upstream include
file and a pid file). For each proxy:

1. ``--cutovers`` cutovers back and forth through ``liftgate.switch`` (a new switch object
   built from the settings each time, as a promotion does); for each, ``activate()``'s own
   ``elapsed_ms`` and the time from the start of ``activate()`` until a probe thread —
   sending ``GET /`` over a new connection in a loop from just before the call — first
   gets the new slot's answer. Goal: median ``activate()`` < 50 ms (printed as a ratio to
   50 ms); p95s are printed;
2. the mechanism alone, as a reference (not a goal): for HAProxy the two ``set server``
   runtime API commands sent by hand, for nginx the reload argv alone, followed by the same
   wait for nginx's old workers to stop taking connections;
3. a client sending sequential requests over keep-alive connections while
   ``--client-cutovers`` cutovers run (goal: 0 failed requests). Through nginx, which
   closes idle keep-alive connections on a reload, the client retries once a request whose
   reused connection was closed before any response byte arrived, as browsers do; through
   HAProxy no retry is allowed.

Usage::

    python benchmarks/bench_switch.py [--cutovers 50] [--client-cutovers 10] [--dir DIR] [--keep]

It is a measurement, not a test: it exits 0 whether the goals pass or fail, and non-zero
only when something errors.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from benchlib import REPO, BenchError, Row, median, print_header, print_summary, show
from liftgate.envconfig import SwitchSettings
from liftgate.switch import Slot, TrafficSwitch, make_switch

# the proxies and backends live with the tests (mypy checks them as the top-level package
# ``support``, because ``tests`` is one of its ``files`` roots)
sys.path.insert(0, str(REPO / "tests"))
from support.proxies import (
    Haproxy,
    Nginx,
    SlotBackend,
    TrafficClient,
    slot_backends,
)

GOAL_MS = 50.0
ADAPTER: TypeAdapter[SwitchSettings] = TypeAdapter(SwitchSettings)


def ms(value: float) -> str:
    return f"{value:.1f} ms"


def p95(values: Sequence[float]) -> float:
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=20, method="inclusive")[18]


def version(argv: list[str]) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    return (proc.stdout + proc.stderr).strip().splitlines()[0]


def work_base(requested: str | None) -> Path:
    if requested:
        base = Path(requested).resolve()
        base.mkdir(parents=True, exist_ok=True)
        return base
    for candidate in (Path("/var/tmp"), Path(tempfile.gettempdir())):
        if candidate.is_dir() and os.access(candidate, os.W_OK | os.X_OK):
            return candidate
    raise BenchError("no writable folder for the work files (pass --dir)")


# --------------------------------------------------------------------------------------
# measurements
# --------------------------------------------------------------------------------------


# the probe: a separate process (so it does not compete with the switch for this
# interpreter's GIL) that, told a slot, sends GET / over new connections in a loop until
# that slot answers, and prints the CLOCK_MONOTONIC time (time.perf_counter's clock) of
# that answer; it says "ready" once its first request of the round has been answered
PROBE = r"""
import http.client, sys, time
port = int(sys.argv[1])
def get():
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/", headers={"Connection": "close"})
        response = conn.getresponse()
        return response.read().decode().strip() if response.status == 200 else ""
    except OSError:
        return ""
    finally:
        conn.close()
for line in sys.stdin:
    want, errors, first = line.strip(), 0, True
    while True:
        slot = get()
        errors += slot == ""
        if first:
            print("ready", flush=True)
            first = False
        if slot == want:
            print(time.perf_counter(), errors, flush=True)
            break
"""


class Probe:
    """The probe process for one proxy port."""

    def __init__(self, port: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", PROBE, str(port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def _line(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise BenchError("the probe process exited")
        return line.strip()

    def arm(self, want: str) -> None:
        """Start probing for ``want``; returns once the probe's first request answered."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(want + "\n")
        self.proc.stdin.flush()
        if self._line() != "ready":
            raise BenchError("the probe did not start")

    def landed(self) -> tuple[float, int]:
        """When ``want`` first answered (perf_counter clock), and the failed requests."""
        when, errors = self._line().split()
        return float(when), int(errors)

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@dataclass
class Timings:
    activate: list[float] = field(default_factory=list)
    landed: list[float] = field(default_factory=list)
    parts: dict[str, list[float]] = field(default_factory=dict)
    probe_errors: int = 0


def bench_cutovers(
    port: int, new_switch: Callable[[], TrafficSwitch], count: int, parts: Sequence[str]
) -> Timings:
    out = Timings(parts={name: [] for name in parts})
    current = new_switch().active()
    probe = Probe(port)
    try:
        for n in range(count):
            target: Slot = "green" if current == "blue" else "blue"
            switch = new_switch()
            probe.arm(target)
            started = time.perf_counter()
            cut = switch.activate(target)
            landed, errors = probe.landed()
            if not cut.changed or cut.slot != target:
                raise BenchError(f"cutover {n + 1} to {target} did nothing: {cut}")
            out.activate.append(cut.elapsed_ms)
            out.landed.append((landed - started) * 1000)
            out.probe_errors += errors
            record(out, cut.detail, parts)
            current = target
    finally:
        probe.close()
    return out


def record(out: Timings, detail: dict[str, Any], parts: Sequence[str]) -> None:
    """The parts of one cutover's time its ``detail`` reports."""
    for name in parts:
        value = detail.get(name)
        if isinstance(value, dict):
            value = value.get("ms")
        if isinstance(value, int | float):
            out.parts[name].append(float(value))


def haproxy_by_hand(hx: Haproxy, count: int) -> list[float]:
    """The two runtime API commands of a cutover, sent by hand (no reads, no state file)."""
    times: list[float] = []
    state = hx.command(f"show servers state {hx.backend}")
    current = "blue" if f"{hx.servers['blue']} 127.0.0.1 2 0" in state else "green"
    for _ in range(count):
        new = "green" if current == "blue" else "blue"
        started = time.perf_counter()
        for line in (
            f"set server {hx.backend}/{hx.servers[new]} state ready",
            f"set server {hx.backend}/{hx.servers[current]} state maint",
        ):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.connect(str(hx.socket))
                sock.sendall(line.encode() + b"\n")
                while sock.recv(4096):
                    pass
        times.append((time.perf_counter() - started) * 1000)
        current = new
    return times


def nginx_by_hand(nx: Nginx, count: int) -> list[float]:
    """The reload argv alone, then the wait until the old workers are shutting down."""
    times: list[float] = []
    for _ in range(count):
        before = set(nx.workers())
        started = time.perf_counter()
        subprocess.run(nx.reload_argv, check=True, capture_output=True, timeout=30)
        deadline = time.monotonic() + 10
        while True:
            now = nx.workers()
            fresh = set(now) - before
            lingering = [p for p in before if p in now and "shutting down" not in now[p]]
            if fresh and not lingering:
                break
            if time.monotonic() > deadline:
                raise BenchError("nginx did not replace its workers within 10 s")
            time.sleep(0.002)
        times.append((time.perf_counter() - started) * 1000)
    return times


@dataclass
class ClientRun:
    requests: int
    failures: list[str]
    retries: int
    hits: dict[str, int]


def bench_client(
    port: int, new_switch: Callable[[], TrafficSwitch], count: int, *, retry: bool
) -> ClientRun:
    client = TrafficClient(port, retry_reused=retry).start()
    try:
        client.wait_for(20)
        current = new_switch().active()
        for _ in range(count):
            target: Slot = "green" if current == "blue" else "blue"
            seen = client.stats.hits[target]
            new_switch().activate(target)
            deadline = time.monotonic() + 5
            while client.stats.hits[target] < seen + 20 and time.monotonic() < deadline:
                time.sleep(0.002)
            current = target
    finally:
        stats = client.stop()
    return ClientRun(stats.requests, stats.failures, stats.retries, dict(stats.hits))


# --------------------------------------------------------------------------------------
# one proxy
# --------------------------------------------------------------------------------------


def run_proxy(kind: str, work: Path, args: argparse.Namespace) -> list[Row]:
    rows: list[Row] = []
    folder = work / kind
    folder.mkdir()
    with slot_backends() as backends:
        proxy = start_proxy(kind, folder, backends)
        try:
            raw = proxy.switch_settings()
            settings = ADAPTER.validate_python(raw)
            print(f"  proxy: {show(proxy_argv(proxy))}")
            if isinstance(proxy, Nginx):
                print(f"  switch test argv:   {show(proxy.test_argv)}")
                print(f"  switch reload argv: {show(proxy.reload_argv)}")
            else:
                print(f"  switch: runtime API on {proxy.socket}, state file {raw['state_file']}")

            def new_switch() -> TrafficSwitch:
                return make_switch(settings, folder)

            parts = ("switched_ms",) if kind == "haproxy" else ("written_ms", "test", "reload_ms")
            print(f"\n  [1] {args.cutovers} cutovers through liftgate.switch (alternating)")
            t = bench_cutovers(proxy.port, new_switch, args.cutovers, parts)
            act50, act95 = median(t.activate), p95(t.activate)
            land50, land95 = median(t.landed), p95(t.landed)
            print(
                f"    activate(): p50 {ms(act50)}, p95 {ms(act95)}, min {ms(min(t.activate))}, "
                f"max {ms(max(t.activate))}"
            )
            print(
                f"    first request on the new slot (from the start of activate()): "
                f"p50 {ms(land50)}, p95 {ms(land95)}"
            )
            for name, values in t.parts.items():
                if values:
                    label = {
                        "switched_ms": "runtime API commands + read-back (before the state file)",
                        "written_ms": "upstream file + marker written (from the start)",
                        "test": "config test argv",
                        "reload_ms": "reload argv + wait for the old workers to stop",
                    }[name]
                    print(f"    {label}: p50 {ms(median(values))}")
            print(f"    failed probe requests (new connections): {t.probe_errors}")

            print(f"\n  [2] reference: the mechanism alone, {args.cutovers // 2} times")
            if isinstance(proxy, Haproxy):
                ref = haproxy_by_hand(proxy, args.cutovers // 2)
                ref_label = "2 x `set server` by hand"
            else:
                ref = nginx_by_hand(proxy, args.cutovers // 2)
                ref_label = "reload argv + worker wait"
            print(f"    {ref_label}: p50 {ms(median(ref))}, p95 {ms(p95(ref))}")
            # put the state back where the switch expects it (the reference may end anywhere)
            new_switch().activate(new_switch().active())

            retry = isinstance(proxy, Nginx)
            rule = (
                "one retry of a request whose reused connection closed before any response byte"
                if retry
                else "no retry"
            )
            print(f"\n  [3] a keep-alive client during {args.client_cutovers} cutovers ({rule})")
            run = bench_client(proxy.port, new_switch, args.client_cutovers, retry=retry)
            print(
                f"    {run.requests} requests OK (blue {run.hits.get('blue', 0)}, green "
                f"{run.hits.get('green', 0)}), {run.retries} retried, {len(run.failures)} failed"
            )
            for failure in run.failures[:5]:
                print(f"      {failure}")
        finally:
            proxy.stop()

    rows.append(
        Row(
            f"{kind}: activate() p50 over {args.cutovers} cutovers",
            ms(act50),
            f"goal {ms(GOAL_MS)}",
            act50 / GOAL_MS,
            "< 1.00",
            "PASS" if act50 < GOAL_MS else "FAIL",
        )
    )
    rows.append(Row(f"{kind}: activate() p95", ms(act95), "-", None, "none set", "INFO"))
    rows.append(
        Row(
            f"{kind}: first request on the new slot, p50 (p95)",
            f"{ms(land50)} ({ms(land95)})",
            f"goal {ms(GOAL_MS)}",
            land50 / GOAL_MS,
            "< 1.00",
            "PASS" if land50 < GOAL_MS else "FAIL",
        )
    )
    rows.append(
        Row(
            f"{kind}: mechanism alone p50 ({ref_label})",
            ms(median(ref)),
            "-",
            None,
            "none set",
            "INFO",
        )
    )
    rows.append(
        Row(
            f"{kind}: failed requests, {args.client_cutovers} cutovers under a client",
            f"{len(run.failures)} of {run.requests + len(run.failures)} ({run.retries} retried)",
            "goal 0",
            None,
            "0",
            "PASS"
            if not run.failures and run.hits.get("blue") and run.hits.get("green")
            else "FAIL",
        )
    )
    return rows


def start_proxy(kind: str, folder: Path, backends: dict[str, SlotBackend]) -> Haproxy | Nginx:
    proxy: Haproxy | Nginx = (
        Haproxy(folder, backends) if kind == "haproxy" else Nginx(folder, backends)
    )
    proxy.start()
    return proxy


def proxy_argv(proxy: Haproxy | Nginx) -> list[str]:
    if proxy.proc is None:
        return []
    argv = proxy.proc.args
    return [str(a) for a in argv] if isinstance(argv, list) else [str(argv)]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--cutovers", type=int, default=50, help="timed cutovers per proxy (default 50)"
    )
    parser.add_argument(
        "--client-cutovers",
        type=int,
        default=10,
        help="cutovers under a keep-alive client per proxy (default 10)",
    )
    parser.add_argument("--dir", default=None, help="folder to work in (default /var/tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args(argv)
    if args.cutovers < 2 or args.client_cutovers < 2:
        parser.error("--cutovers and --client-cutovers must be at least 2")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    print_header("liftgate traffic switch benchmark")
    print(f"  load {os.getloadavg()[0]:.2f}")
    print(f"  {version([shutil.which('haproxy') or '/usr/sbin/haproxy', '-v'])}")
    print(f"  {version([shutil.which('nginx') or '/usr/sbin/nginx', '-v'])}")
    work = Path(tempfile.mkdtemp(prefix="liftgate-bench-switch-", dir=work_base(args.dir)))
    print(f"  work folder {work}")
    rows: list[Row] = []
    try:
        for kind in ("haproxy", "nginx"):
            print(f"\n== {kind}")
            rows += run_proxy(kind, work, args)
        print(f"\n  load at the end {os.getloadavg()[0]:.2f}")
        print(f"\nsummary (ratio = value / {GOAL_MS:g} ms goal)")
        print_summary(rows, value="value", reference="reference")
    finally:
        if args.keep:
            print(f"\nkept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
