#!/usr/bin/env python3
"""Benchmark liftgate's blue-green Odoo promotion on a ~750 MB Odoo-shaped production.

The environment is the one of ``bench_odoo_backup.py`` (its ``build``: a private
PostgreSQL cluster in a disk-backed work folder, ``liftgate.sandbox.odoo_sample`` data,
about 750 MB of database and a 10,000-attachment ~300 MB filestore at ``--scale 1``),
made into a production with blue/green slots the way ``tests/support/promote_env.py``
makes one: blue and staging served by the Odoo server stand-in, a real HAProxy in front of
the blue and green slots, staging deployed by liftgate with a newer commit. Then:

1. green's data preparation, copy only (no module update), as the promotion does it:
   ``slotcopy.copy_template`` + ``slotcopy.copy_filestore`` vs ``psql -c "CREATE DATABASE
   ... TEMPLATE <blue> STRATEGY FILE_COPY"`` + ``cp -al`` of the filestore (goal: ratio
   <= 1.2); ``slotcopy.copy_dump`` + ``copy_filestore`` (the promotion's default, no
   outage) is timed beside them for reference. ``--repeats`` runs each, medians;
2. a promotion through the CLI (``liftgate odoo promote staging prod --approve --copy
   template --json``): its write freeze (``cutover.json``) against the copy + the module
   update + the smoke tests + 1 s (goal: freeze <= that sum), every component printed;
3. ten cutovers back and forth through production's HAProxy with ``liftgate.switch`` while
   a keep-alive client reads ``/web/health`` (goals: 0 failed requests; ``activate()``
   p50 < 50 ms). Ten is even: production ends on the slot the promotion left active;
4. ``liftgate odoo rollback prod --discard-green-writes --json``: ``seconds_to_blue``
   (goal < 1 s) and the CLI's wall time;
5. a second promotion with ``--copy dump`` (the default) and its rollback, same figures.

Usage::

    python benchmarks/bench_promote.py [--scale 1.0] [--repeats 2] [--dir DIR] [--keep]
                                       [--no-dump-promotion] [--profile]

It is a measurement, not a test: it exits 0 whether the goals pass or fail, and non-zero
only when something errors.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from bench_odoo_backup import (
    Phases,
    Setup,
    build,
    env_work_folder,
    lg_argv,
    lg_run,
    load,
    mbs,
    role_conninfo,
    run_checked,
    run_phases,
    secs,
    timed_steps,
)
from benchlib import (
    REPO,
    BenchError,
    Row,
    check_env_args,
    env_parser,
    median,
    print_header,
    print_summary,
    show,
)
from liftgate.engine import fsops
from liftgate.engine.fsops import fsync_dir, link_or_copy_tree
from liftgate.engine.project import Project
from liftgate.odoo import slotcopy
from liftgate.odoo.env import resolve_env
from liftgate.odoo.restore import maintenance_connection
from liftgate.switch import Slot, TrafficSwitch, make_switch, other

# the stand-in, the proxies and the promotion set-up live with the tests (bench_odoo_backup
# put the tests folder on sys.path; mypy finds them because ``tests`` is one of its roots)
sys.path.insert(0, str(REPO / "tests"))
from odoo_standin import (
    LOGFILE_NAME,
    http_json,
)
from support.odoo_project import OdooProject
from support.promote_env import PromoteEnv, build_promote_env
from support.proxies import TrafficClient

COPY_GOAL = 1.2  # liftgate template copy / (CREATE DATABASE ... TEMPLATE + cp -al)
FREEZE_SLACK_S = 1.0  # freeze <= copy + module update + smoke tests + 1 s
SWITCH_GOAL_MS = 50.0  # activate() p50
ROLLBACK_GOAL_S = 1.0  # seconds_to_blue
CUTOVERS = 10
CLIENT_PATH = "/web/health"
# the steps of a promotion that run while blue is frozen (journal names, in order)
FROZEN_STEPS = ("green_copy", "green_update", "green_start", "smoke", "cutover")


def ms(value: float) -> str:
    return f"{value:.1f} ms"


def p95(values: Sequence[float]) -> float:
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=20, method="inclusive")[18]


# --------------------------------------------------------------------------------------
# the production env: blue/green slots behind HAProxy, staging deployed by liftgate
# --------------------------------------------------------------------------------------


def make_env(s: Setup) -> PromoteEnv:
    """``support.promote_env.build_promote_env`` (the tests' production with slots behind
    HAProxy, staging deployed by liftgate) on ``build``'s large database."""
    started = time.perf_counter()
    project = OdooProject(
        root=s.project,
        cluster=s.cluster,
        role=s.role,
        prod_db=s.prod_db,
        staging_db=f"{s.prod_db}_stg",
        prod_filestore=s.prod_fs,
        staging_filestore=s.prod_fs.parent / f"{s.prod_db}_stg",
        populated=s.populated,
    )
    env = build_promote_env(s.work, project)
    with psycopg.connect(s.cluster.dsn, autocommit=True) as admin:
        admin.execute("CHECKPOINT")
    os.sync()
    proxy = env.proxy
    print(
        f"  production made in {secs(time.perf_counter() - started)} by "
        "tests/support/promote_env.build_promote_env: staging = CREATE DATABASE "
        f"{env.dbs['staging']} TEMPLATE {env.dbs['blue']} + hard-linked filestore, then "
        f"liftgate odoo deploy of commit {env.staged_commit[:12]}"
    )
    print(f"  HAProxy on {env.public_url}: blue {env.urls['blue']}, green {env.urls['green']}")
    print(
        f"  slots: blue db {env.dbs['blue']}, green db {env.dbs['green']}; "
        f"staging db {env.dbs['staging']}; runtime API {proxy.switch_settings()['socket']}"
    )
    print(f"  Odoo server stand-in (tests/odoo_standin) as odoo-bin: {env.odoo_bin}")
    return env


# --------------------------------------------------------------------------------------
# 1. green's data: liftgate's copies vs CREATE DATABASE ... TEMPLATE + cp -al
# --------------------------------------------------------------------------------------
@dataclass
class CopyRuns:
    template: list[float] = field(default_factory=list)
    template_outage: list[float] = field(default_factory=list)
    template_db: list[float] = field(default_factory=list)  # copy_template alone
    template_fs: list[float] = field(default_factory=list)  # copy_filestore alone
    dump: list[float] = field(default_factory=list)
    baseline: list[float] = field(default_factory=list)
    baseline_db: list[float] = field(default_factory=list)  # psql CREATE DATABASE alone
    baseline_fs: list[float] = field(default_factory=list)  # cp -al alone


def settle(s: Setup) -> None:
    """CHECKPOINT (no step pays for the previous one's dirty buffers), then sync."""
    with s.admin() as conn:
        conn.execute("CHECKPOINT")
    os.sync()


def bench_copies(s: Setup, env: PromoteEnv, repeats: int) -> CopyRuns:
    res = CopyRuns()
    project = Project.open(cwd=env.root)
    try:
        blue = resolve_env(project, "prod.blue")
        fs_parent = blue.filestore.parent
        names = {side: f"bench_copy_{side}" for side in ("template", "dump", "baseline")}
        create = (
            sql.SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY FILE_COPY")
            .format(sql.Identifier(names["baseline"]), sql.Identifier(blue.db))
            .as_string()
        )
        psql = [
            s.tool("psql"),
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            role_conninfo(s.cluster, s.role, "postgres"),
            "-c",
            create,
        ]
        cp = ["cp", "-al", str(blue.filestore), str(fs_parent / names["baseline"])]
        print(
            f"  liftgate, template: slotcopy.copy_template(admin, {blue.db!r}, "
            f"{names['template']!r}) then"
        )
        print(
            f"            slotcopy.copy_filestore({str(blue.filestore)!r}, <filestore>/"
            f"{names['template']}) (in this process, admin = maintenance_connection(prod.blue))"
        )
        print(
            f"  liftgate, dump (reference): slotcopy.copy_dump(prod.blue, {blue.db!r}, "
            f"{names['dump']!r}) + copy_filestore"
        )
        print(f"  baseline: {show(psql)}")
        print(f"            then {show(cp)}   (sequentially, cwd {s.work})")
        print(
            f"  all as liftgate's role {s.role}; before each timed run: the copies dropped, "
            "CHECKPOINT, sync"
        )
        admin = maintenance_connection(blue)

        def clean() -> None:
            for name in names.values():
                s.drop_db(name)
                shutil.rmtree(fs_parent / name, ignore_errors=True)

        def template(i: int) -> None:
            settle(s)
            started = time.perf_counter()
            copied = slotcopy.copy_template(admin, blue.db, names["template"])
            between = time.perf_counter()
            linked = slotcopy.copy_filestore(blue.filestore, fs_parent / names["template"])
            wall = time.perf_counter() - started
            res.template.append(wall)
            res.template_db.append(between - started)
            res.template_fs.append(wall - (between - started))
            res.template_outage.append(copied.outage_seconds)
            print(
                f"  run {i} liftgate template copy: {secs(wall)} (database {copied.seconds:.2f} s, "
                f"attempts {copied.detail.get('attempts')}, sessions ended "
                f"{copied.detail.get('sessions_ended')}; "
                f"outage {copied.outage_seconds:.2f} s, {mbs(copied.bytes)}; filestore "
                f"{linked['method']} {linked['files']:,} files {linked['seconds']:.2f} s)"
            )
            clean()

        def dump(i: int) -> None:
            settle(s)
            started = time.perf_counter()
            copied = slotcopy.copy_dump(blue, blue.db, names["dump"], redactor=project.redactor)
            linked = slotcopy.copy_filestore(blue.filestore, fs_parent / names["dump"])
            wall = time.perf_counter() - started
            res.dump.append(wall)
            d = copied.detail
            print(
                f"  run {i} liftgate dump copy (reference): {secs(wall)} (database "
                f"{copied.seconds:.2f} s = pg_dump {d.get('dump_seconds')} s + pg_restore/ANALYZE "
                f"{d.get('restore_seconds')} s, {d.get('jobs')} jobs, outage "
                f"{copied.outage_seconds:.2f} s; filestore {linked['seconds']:.2f} s)"
            )
            clean()

        def baseline(i: int) -> None:
            settle(s)
            parts = timed_steps([(psql, s.work), (cp, s.work)])
            res.baseline.append(sum(parts))
            res.baseline_db.append(parts[0])
            res.baseline_fs.append(parts[1])
            print(
                f"  run {i} baseline: {secs(sum(parts))} (CREATE DATABASE ... TEMPLATE "
                f"{secs(parts[0])} + cp -al {secs(parts[1])})"
            )
            clean()

        clean()
        try:
            # one untimed round of both copies first: on this VM the first time a copy's
            # pages are touched costs far more than any later time (fresh guest memory), and
            # whichever side ran first would pay for it
            print("  warm-up, not counted: one baseline copy and one liftgate template copy")
            baseline(0)
            template(0)
            for runs in (res.template, res.template_outage, res.template_db, res.template_fs):
                runs.clear()
            for runs in (res.baseline, res.baseline_db, res.baseline_fs):
                runs.clear()
            for i in range(1, repeats + 1):
                sides: tuple[Callable[[int], None], ...] = (
                    (template, baseline, dump) if i % 2 else (baseline, template, dump)
                )
                for side in sides:
                    side(i)
        finally:
            admin.close()
            clean()
    finally:
        project.close()
    ratio = median(res.template) / median(res.baseline)
    print(
        f"  [1] template copy median {secs(median(res.template))}, baseline median "
        f"{secs(median(res.baseline))}: ratio {ratio:.2f} (goal <= {COPY_GOAL}); dump copy "
        f"median {secs(median(res.dump))} (outage 0)"
    )
    print(
        f"      database: copy_template {secs(median(res.template_db))} vs psql CREATE DATABASE "
        f"{secs(median(res.baseline_db))}; filestore: copy_filestore "
        f"{secs(median(res.template_fs))} vs cp -al {secs(median(res.baseline_fs))} (medians)"
    )
    return res


def plain_link_tree(src: Path, dst: Path) -> list[Path]:
    """``cp -al`` in Python: folders made, files hard-linked, nothing fsynced; the folders."""
    made = [dst]
    os.mkdir(dst)
    for folder, dirnames, filenames in os.walk(src):
        here = dst / os.path.relpath(folder, src)
        for name in dirnames:
            os.mkdir(here / name)
            made.append(here / name)
        for name in filenames:
            os.link(os.path.join(folder, name), here / name)
    return made


def profile_filestore(s: Setup, env: PromoteEnv, repeats: int) -> None:
    """Where copy_filestore's time goes next to ``cp -al``: each part re-timed alone, on
    the same filestore, ``sync`` before each (medians of ``repeats``)."""
    project = Project.open(cwd=env.root)
    try:
        src = resolve_env(project, "prod.blue").filestore
    finally:
        project.close()
    dst = src.parent / "bench_profile_fs"
    folders = sum(1 for _, dirnames, _ in os.walk(src) for _ in dirnames) + 1
    cp = ["cp", "-al", str(src), str(dst)]
    times: dict[str, list[float]] = {}

    def timed(label: str, action: Callable[[], object]) -> None:
        shutil.rmtree(dst, ignore_errors=True)
        os.sync()
        started = time.perf_counter()
        action()
        times.setdefault(label, []).append(time.perf_counter() - started)

    def cp_then_sync() -> None:
        run_checked(cp, s.work)
        os.sync()

    def link_then_fsync() -> None:
        shutil.rmtree(dst, ignore_errors=True)
        os.sync()
        started = time.perf_counter()
        made = plain_link_tree(src, dst)
        linked = time.perf_counter()
        for folder in made:  # the first one commits the links' metadata to the journal
            fsync_dir(folder)
        times.setdefault("plain", []).append(linked - started)
        times.setdefault("fsync", []).append(time.perf_counter() - linked)

    try:
        for _ in range(repeats):
            timed("cp", lambda: run_checked(cp, s.work))
            timed("cp+sync", cp_then_sync)
            link_then_fsync()
            timed("tree", lambda: link_or_copy_tree(src, dst))
            timed("copy", lambda: slotcopy.copy_filestore(src, dst))
    finally:
        shutil.rmtree(dst, ignore_errors=True)
    m = {label: median(values) for label, values in times.items()}
    print(f"  filestore {src}: {folders} folders; each part alone, sync before each, medians:")
    print(f"    {show(cp)}: {m['cp']:.3f} s; followed by sync: {m['cp+sync']:.3f} s")
    print(
        f"    the same in Python (os.walk + mkdir + os.link, nothing fsynced): {m['plain']:.3f} s,"
    )
    print(f"      then fsync of each of the {folders} new folders right after: {m['fsync']:.3f} s")
    print(
        "    fsops.link_or_copy_tree (one walk making the folders, then "
        f"{fsops._TREE_THREADS} threads linking and lstat-ing the files, chmod + fsync of "
        f"every folder): {m['tree']:.3f} s"
    )
    print(
        f"    slotcopy.copy_filestore (the above, rename, fsync of the parent): {m['copy']:.3f} s"
    )


# --------------------------------------------------------------------------------------
# 2. a promotion through the CLI, and its write freeze
# --------------------------------------------------------------------------------------
@dataclass
class ClientRun:
    requests: int
    failures: list[str]

    def text(self) -> str:
        return f"{len(self.failures)} failed of {self.requests + len(self.failures)}"

    def report(self, during: str) -> None:
        """Print the count and the first failures, under "client during <during>"."""
        print(f"  client during {during}: {self.text()}")
        for failure in self.failures[:5]:
            print(f"    {failure}")


@dataclass
class Promotion:
    copy: str
    wall: float
    run_id: str
    freeze: float
    outage: float
    data_s: float
    db_s: float
    fs_s: float
    update_s: float
    smoke_s: float
    smoke_checks_ms: float
    start_s: float
    health_s: float
    switch_ms: float
    steps: list[tuple[str, float]]
    client: ClientRun

    @property
    def budget(self) -> float:
        return self.data_s + self.update_s + self.smoke_s + FREEZE_SLACK_S


def read_json(path: Path) -> dict[str, Any]:
    data: Any = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise BenchError(f"{path} does not hold a JSON object")
    return data


def with_client(port: int, action: Callable[[], tuple[float, dict[str, Any]]]) -> tuple[
    float, dict[str, Any], ClientRun
]:  # fmt: skip
    """``action`` while a keep-alive client reads ``CLIENT_PATH`` through the proxy."""
    client = TrafficClient(port, retry_reused=False, path=CLIENT_PATH).start()
    try:
        client.wait_for(5)
        wall, out = action()
        time.sleep(0.3)
    finally:
        stats = client.stop()
    return wall, out, ClientRun(stats.requests, list(stats.failures))


def bench_promotion(env: PromoteEnv, copy: str, label: str) -> Promotion:
    argv = lg_argv("odoo", "promote", "staging", "prod", "--approve", "--copy", copy, "--json")
    print(f"  liftgate: {show(argv)}   (cwd {env.root})")
    print(f"  a keep-alive client reads {CLIENT_PATH} through HAProxy all along (no retry)")
    wall, out, client = with_client(env.proxy.port, lambda: lg_run(argv, env.root))
    if out.get("active") != "green":
        raise BenchError(f"the promotion did not leave green active: {out}")
    evidence = Path(str(out["evidence_path"]))
    cutover = read_json(evidence / "cutover.json")
    final = read_json(evidence / "green_restore.json")["final"]
    smoke = read_json(evidence / "smoke_tests.json")
    phases: Phases = run_phases(env.root, str(out["run_id"]))
    steps = dict(phases.steps)
    checks = [c for c in smoke.get("final", []) if isinstance(c, dict)]
    p = Promotion(
        copy=copy,
        wall=wall,
        run_id=str(out["run_id"]),
        freeze=float(cutover["write_freeze_seconds"]),
        outage=float(cutover.get("outage_seconds") or 0.0),
        data_s=float(final["data_seconds"]),
        db_s=float(final["copy"]["seconds"]),
        fs_s=float(final["filestore"]["seconds"]),
        update_s=float(final["update"]["seconds"]),
        smoke_s=steps.get("smoke", 0.0),
        smoke_checks_ms=sum(float(c.get("ms", 0.0)) for c in checks),
        start_s=steps.get("green_start", 0.0),
        health_s=float(final.get("health", {}).get("seconds", 0.0)),
        switch_ms=float(cutover.get("switch_ms") or 0.0),
        steps=phases.steps,
        client=client,
    )
    print(
        f"  promotion {p.run_id}: CLI wall {secs(wall)}, run {secs(phases.run_s)}; {out['message']}"
    )
    print("  steps of its journal (* = while blue is frozen read-only):")
    for name, spent in phases.steps:
        print(f"   {'*' if name in FROZEN_STEPS else ' '} {name:<20} {secs(spent):>9}")
    pg = final["copy"].get("detail", {})
    print(f"  evidence {evidence}:")
    print(
        f"    cutover.json: write_freeze_seconds {p.freeze:.3f}, outage_seconds {p.outage:.3f}, "
        f"switch_ms {p.switch_ms:.1f}"
    )
    how = str(final["copy"]["strategy"])
    if pg.get("pg_strategy"):
        how += f", {pg['pg_strategy']}"
    print(
        f"    green_restore.json final: data_seconds {p.data_s:.3f} = copy ({how}) {p.db_s:.3f} s "
        f"+ filestore ({final['filestore'].get('method')}) {p.fs_s:.3f} s;"
    )
    print(
        f"      update {p.update_s:.3f} s (modules {final['update'].get('update')}); health "
        f"{p.health_s:.3f} s ({final.get('health', {}).get('attempts')} polls)"
    )
    print(
        f"    smoke_tests.json final: {len(checks)} check(s), {p.smoke_checks_ms:.1f} ms of "
        f"requests; journal step smoke {secs(p.smoke_s)}"
    )
    verdict = "PASS" if p.freeze <= p.budget else "FAIL"
    print(
        f"  [{label}] write freeze {p.freeze:.2f} s vs copy {p.data_s:.2f} + update "
        f"{p.update_s:.2f} + smoke {p.smoke_s:.2f} + {FREEZE_SLACK_S:g} = {p.budget:.2f} s: "
        f"{verdict}"
    )
    rest = p.freeze - p.data_s - p.update_s - p.smoke_s
    print(
        f"      the rest of the freeze: {rest:.2f} s (green_start {p.start_s:.2f} s: freeze green, "
        f"switch release, start service, health {p.health_s:.2f} s; cutover; journal writes)"
    )
    client.report("the promotion")
    return p


# --------------------------------------------------------------------------------------
# 3. cutovers through production's HAProxy under a client
# --------------------------------------------------------------------------------------
@dataclass
class Cutovers:
    elapsed: list[float]
    client: ClientRun
    served: dict[str, int]
    wrong: list[str]
    start: str


def health_lines(env: PromoteEnv, slot: str) -> int:
    log = env.root.parent / f"svc-{slot}" / LOGFILE_NAME
    try:
        return log.read_text(errors="replace").count(f'"GET {CLIENT_PATH} ')
    except OSError:
        return 0


def bench_cutovers(env: PromoteEnv, count: int) -> Cutovers:
    project = Project.open(cwd=env.root)
    try:
        settings = project.config.settings.env["prod"].switch
        base_dir = project.config.base_dir
    finally:
        project.close()
    if settings is None:
        raise BenchError("env.prod has no switch settings")

    def new_switch() -> TrafficSwitch:
        return make_switch(settings, base_dir)

    start = new_switch().active()
    print(
        f"  {count} x liftgate.switch.make_switch([env.prod.switch]).activate(<other slot>) on "
        f"{env.proxy.binary}, starting on {start} (active after the promotion)"
    )
    print(
        f"  a keep-alive client reads {CLIENT_PATH} through HAProxy (no retry); after each "
        "cutover, once it made 20 more requests, GET /standin/info over a new connection says "
        "which slot's database answers"
    )
    before = {slot: health_lines(env, slot) for slot in ("blue", "green")}
    elapsed: list[float] = []
    wrong: list[str] = []
    client = TrafficClient(env.proxy.port, retry_reused=False, path=CLIENT_PATH).start()
    current: Slot = start
    try:
        client.wait_for(20)
        for n in range(count):
            target = other(current)
            seen = client.stats.requests
            cut = new_switch().activate(target)
            if not cut.changed or cut.slot != target:
                raise BenchError(f"cutover {n + 1} to {target} did nothing: {cut}")
            elapsed.append(cut.elapsed_ms)
            deadline = time.monotonic() + 5
            while client.stats.requests < seen + 20 and time.monotonic() < deadline:
                time.sleep(0.002)
            status, body = http_json(f"{env.public_url}/standin/info", timeout=5)
            db = body.get("db") if isinstance(body, dict) else None
            if status != 200 or db != env.dbs[target]:
                wrong.append(f"after cutover {n + 1} to {target}: {status} {db}")
            current = target
    finally:
        stats = client.stop()
        if new_switch().active() != start:
            new_switch().activate(start)
            print(f"  put the switch back on {start}")
    served = {slot: health_lines(env, slot) - before[slot] for slot in ("blue", "green")}
    run = ClientRun(stats.requests, list(stats.failures))
    print(
        f"  activate(): p50 {ms(median(elapsed))}, p95 {ms(p95(elapsed))}, min "
        f"{ms(min(elapsed))}, max {ms(max(elapsed))}"
    )
    print(
        f"  client: {run.text()} requests (from the services' logs: blue answered "
        f"{served['blue']}, green {served['green']}); wrong slot after a cutover: {len(wrong)}"
    )
    for line in [*run.failures[:5], *wrong[:5]]:
        print(f"    {line}")
    print(f"  production ends on {new_switch().active()}")
    return Cutovers(elapsed, run, served, wrong, start)


# --------------------------------------------------------------------------------------
# 4. rollback
# --------------------------------------------------------------------------------------
@dataclass
class Rollback:
    wall: float
    to_blue: float
    switch_ms: float
    client: ClientRun


def bench_rollback(env: PromoteEnv) -> Rollback:
    argv = lg_argv("odoo", "rollback", "prod", "--discard-green-writes", "--json")
    print(f"  liftgate: {show(argv)}   (cwd {env.root}; the client reads on)")
    wall, out, client = with_client(env.proxy.port, lambda: lg_run(argv, env.root))
    r = Rollback(
        wall=wall,
        to_blue=float(out["seconds_to_blue"]),
        switch_ms=float(out.get("switch_ms") or 0.0),
        client=client,
    )
    print(
        f"  seconds_to_blue {r.to_blue:.3f} (switch {ms(r.switch_ms)}); CLI wall {secs(wall)} "
        f"(it counts green's writes first, with a 1 s settle); active now {out.get('active')}; "
        f"green writes after the cutover {out.get('green_writes_after_cutover')}; green kept as "
        f"{(out.get('green_kept_as') or {}).get('db')}"
    )
    client.report("the rollback")
    return r


# --------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------
def freeze_row(p: Promotion, label: str) -> Row:
    return Row(
        f"{label} write freeze, --copy {p.copy}",
        secs(p.freeze),
        f"copy {p.data_s:.2f} + update {p.update_s:.2f} + smoke {p.smoke_s:.2f} + 1 = "
        f"{p.budget:.2f} s",
        p.freeze / p.budget,
        "<= 1.00",
        "PASS" if p.freeze <= p.budget else "FAIL",
    )


def rollback_row(r: Rollback, label: str) -> list[Row]:
    return [
        Row(
            f"{label} rollback seconds_to_blue",
            secs(r.to_blue),
            f"goal {ROLLBACK_GOAL_S:g} s",
            r.to_blue / ROLLBACK_GOAL_S,
            "< 1.00",
            "PASS" if r.to_blue < ROLLBACK_GOAL_S else "FAIL",
        ),
        Row(f"{label} rollback CLI wall", secs(r.wall), "-", None, "none set", "INFO"),
    ]


def client_row(label: str, run: ClientRun) -> Row:
    return Row(label, run.text(), "-", None, "none set", "INFO")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = env_parser(
        __doc__, quick="0.02", repeats_help="timed runs per side of [1] (default 2; medians)"
    )
    parser.add_argument(
        "--no-dump-promotion",
        action="store_true",
        help="skip [5], the second promotion (--copy dump) and its rollback",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="split the filestore copy's time of [1] even when the copy meets its goal",
    )
    args = parser.parse_args(argv)
    check_env_args(parser, args)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    print_header("liftgate Odoo blue-green promotion benchmark")
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    hx_version = run_checked([haproxy, "-v"], REPO).splitlines()[0]
    print(f"  {hx_version}")
    work = env_work_folder(args, "lg-bench-promote-", 10000)
    print(f"  pg_dump's folder of copy_dump: {tempfile.gettempdir()}")

    rows: list[Row] = []
    setup: Setup | None = None
    env: PromoteEnv | None = None
    try:
        print("\n[build] private cluster, Odoo-shaped database, filestore (bench_odoo_backup)")
        setup = build(work, args.scale)
        s = setup
        with s.admin() as conn:
            version = conn.execute("SHOW server_version").fetchone()
            fsync = conn.execute("SHOW fsync").fetchone()
        print(f"  PostgreSQL {version[0] if version else '?'}, fsync {fsync[0] if fsync else '?'}")
        print("\n[build] production with blue/green slots (tests/support/promote_env.py's layout)")
        env = make_env(s)

        print(
            f"\n[1] green's data, copy only: liftgate vs CREATE DATABASE ... TEMPLATE + cp -al "
            f"({args.repeats} runs per side; medians)"
        )
        copies = bench_copies(s, env, args.repeats)
        baseline = median(copies.baseline)
        copy_ratio = median(copies.template) / baseline
        rows.append(
            Row(
                "1 green data: copy_template + copy_filestore",
                secs(median(copies.template)),
                f"TEMPLATE FILE_COPY + cp -al {secs(baseline)}",
                copy_ratio,
                f"<= {COPY_GOAL}",
                "PASS" if copy_ratio <= COPY_GOAL else "FAIL",
            )
        )
        if args.profile or copy_ratio > COPY_GOAL:
            why = "--profile" if args.profile else "the copy misses its goal"
            print(f"\n[1 profile] ({why}) where copy_filestore's time goes")
            profile_filestore(s, env, args.repeats)
        rows.append(
            Row(
                "1 template copy: blue refused connections",
                secs(median(copies.template_outage)),
                "-",
                None,
                "none set",
                "INFO",
            )
        )
        rows.append(
            Row(
                "1 green data: copy_dump + copy_filestore (outage 0)",
                secs(median(copies.dump)),
                f"TEMPLATE FILE_COPY + cp -al {secs(baseline)}",
                median(copies.dump) / baseline,
                "none set",
                "INFO",
            )
        )

        print("\n[2] a promotion through the CLI, --copy template")
        first = bench_promotion(env, "template", "2")
        rows.append(freeze_row(first, "2"))
        rows.append(client_row("2 client during the promotion", first.client))

        print(f"\n[3] {CUTOVERS} cutovers through production's HAProxy under a client")
        cuts = bench_cutovers(env, CUTOVERS)
        ok = not cuts.client.failures and not cuts.wrong and all(cuts.served.values())
        rows.append(
            Row(
                f"3 failed requests, {CUTOVERS} cutovers",
                cuts.client.text(),
                f"{len(cuts.wrong)} wrong slot",
                None,
                "0",
                "PASS" if ok else "FAIL",
            )
        )
        p50 = median(cuts.elapsed)
        rows.append(
            Row(
                f"3 switch activate() p50 (p95) over {CUTOVERS}",
                f"{ms(p50)} ({ms(p95(cuts.elapsed))})",
                f"goal {ms(SWITCH_GOAL_MS)}",
                p50 / SWITCH_GOAL_MS,
                "< 1.00",
                "PASS" if p50 < SWITCH_GOAL_MS else "FAIL",
            )
        )

        print("\n[4] rollback of the promotion")
        back = bench_rollback(env)
        rows += rollback_row(back, "4")
        rows.append(client_row("4 client during the rollback", back.client))

        if args.no_dump_promotion:
            print("\n[5] second promotion (--copy dump): skipped (--no-dump-promotion)")
        else:
            print(
                "\n[5] a second promotion, --copy dump (the default), and its rollback "
                "(the rollback closed the first one's window: no --close-window needed)"
            )
            second = bench_promotion(env, "dump", "5")
            rows.append(freeze_row(second, "5"))
            rows.append(client_row("5 client during the promotion", second.client))
            print()
            again = bench_rollback(env)
            rows += rollback_row(again, "5")

        print(f"\nload average at the end: {load()}")
        print("\nsummary")
        print_summary(rows, value="value", reference="reference")
    finally:
        if env is not None:
            env.stop()
        if setup is not None:
            setup.cluster.cleanup()
        if args.keep:
            print(f"\nkept {work} (the cluster, services and proxy are stopped)")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
