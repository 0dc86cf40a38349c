"""The seven preconditions of a promotion, each checked and recorded on its own.

1. staging's last deploy succeeded;
2. the commit deployed on staging is the commit green will run (staging's ``current``);
3. permissions: create/rename databases, write the green slot's filestore and releases
   folders, run the services' commands, control the switch;
4. disk space for green and for the backups, estimated from the sizes;
5. no Odoo Enterprise module in the release;
6. no other run holds production: its lock is held by this run, and no promotion waits
   for approval;
7. the active slot is healthy and the switch answers.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from liftgate.engine.project import Project
from liftgate.errors import LiftgateError
from liftgate.odoo.backup import env_lock
from liftgate.odoo.deploy import DeploySpec
from liftgate.odoo.enterprise import check as enterprise_check
from liftgate.odoo.manifest import scan_addons
from liftgate.odoo.prodslots import ProdSlots, other
from liftgate.odoo.restore import maintenance_connection
from liftgate.odoo.service import wait_health
from liftgate.odoo.status import last_deploy

__all__ = ["Preconditions", "check_preconditions"]

_MARGIN = 64 * 1024 * 1024


@dataclass
class Preconditions:
    checks: list[dict[str, Any]] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    waived: set[int] = field(default_factory=set)  # by a guardrail turned off (acknowledged)

    @property
    def ok(self) -> bool:
        return all(c["ok"] or c["number"] in self.waived for c in self.checks)

    def add(self, number: int, name: str, fn: Callable[[], str]) -> None:
        try:
            detail, ok = fn(), True
        except (LiftgateError, OSError, psycopg.Error) as exc:
            detail, ok = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc), False
        self.checks.append({"number": number, "name": name, "ok": ok, "detail": detail})

    def failures(self) -> str:
        return "; ".join(
            f"({c['number']}) {c['name']}: {c['detail']}"
            for c in self.checks
            if not c["ok"] and c["number"] not in self.waived
        )

    def summary(self) -> str:
        passed = sum(1 for c in self.checks if c["ok"])
        return f"{passed} of {len(self.checks)} preconditions hold" + (
            f"; failing: {self.failures()}" if not self.ok else ""
        )

    def as_list(self) -> list[dict[str, Any]]:
        return list(self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checks": self.checks,
            "waived": sorted(self.waived),
            "facts": self.facts,
        }


class PreconditionError(LiftgateError):
    code = "precondition"


def _free(path: Path) -> int:
    probe = path
    while not probe.exists():
        probe = probe.parent
    return shutil.disk_usage(probe).free


def _writable(path: Path) -> None:
    probe = path
    while not probe.exists():
        probe = probe.parent
    if not os.access(probe, os.W_OK | os.X_OK):
        raise PreconditionError(f"{probe} is not writable by this user")


def _runnable(argv: list[str] | None, what: str) -> None:
    if not argv:
        return
    exe = argv[0]
    if ("/" in exe and not os.access(exe, os.X_OK)) or ("/" not in exe and not shutil.which(exe)):
        raise PreconditionError(f"{what} command {exe!r} cannot be run")


def check_preconditions(
    project: Project,
    staging_name: str,
    slots: ProdSlots,
    *,
    data: str,
    resuming: str | None = None,
) -> Preconditions:
    """Check all seven; ``resuming``: the id of the paused run being approved."""
    pre = Preconditions()
    facts = pre.facts

    def deploy_ok() -> str:
        run = last_deploy(project, staging_name, ok_only=False)
        if run is None:
            raise PreconditionError(f"{staging_name} has never been deployed by liftgate")
        if run.status != "ok":
            raise PreconditionError(
                f"the last deploy of {staging_name} ({run.run_id}) is {run.status}"
            )
        facts["commit"] = run.result.get("commit")
        facts["staging_deploy_run"] = run.run_id
        return f"run {run.run_id} deployed {facts['commit']}"

    def same_commit() -> str:
        spec = DeploySpec.resolve(project, staging_name)
        current = spec.releases.current()
        if not facts.get("commit"):
            raise PreconditionError("no successful deploy of staging to compare with")
        if current != facts["commit"]:
            raise PreconditionError(
                f"staging runs {current or 'no release'}, not {facts['commit']} (its last deploy)"
            )
        facts["staging_release"] = str(spec.releases.path(str(current)))
        return f"green will run {current}, the commit staging runs"

    def permissions() -> str:
        active = facts.get("active") or slots.active()
        green_slot = other(active)
        green = slots.env(project, green_slot)
        spec = slots.spec(project, green_slot)
        blue_spec = slots.spec(project, active)
        with maintenance_connection(green) as admin:
            row = admin.execute(
                "SELECT rolcreatedb, rolsuper FROM pg_roles WHERE rolname = current_user"
            ).fetchone()
            if row is None or not (row[0] or row[1]):
                raise PreconditionError("the database role may not create databases (CREATEDB)")
            owners = dict(
                admin.execute(
                    "SELECT d.datname, pg_get_userbyid(d.datdba) = current_user "
                    "FROM pg_database d WHERE d.datname = ANY(%s)",
                    ([green.db, slots.env(project, active).db],),
                ).fetchall()
            )
            for db, owned in owners.items():
                if not owned and not row[1]:
                    raise PreconditionError(
                        f"the database role does not own {db}; it cannot rename it"
                    )
        _writable(green.filestore.parent)
        _writable(spec.releases.root)
        for s, what in ((spec, "green's"), (blue_spec, "blue's")):
            if s.service is not None:
                for argv in (s.service.start, s.service.stop, s.service.restart):
                    _runnable(argv, f"{what} service")
        _runnable([spec.odoo_bin], "odoo_bin")
        slots.switch.check()
        return "databases, folders, services and switch are controllable"

    def disk_space() -> str:
        active = facts.get("active") or slots.active()
        blue = slots.env(project, active)
        green = slots.env(project, other(active))
        with maintenance_connection(blue) as admin:
            size_row = admin.execute("SELECT pg_database_size(%s)", (blue.db,)).fetchone()
            db_bytes = int(size_row[0]) if size_row else 0
            try:
                data_row = admin.execute("SELECT current_setting('data_directory')").fetchone()
                data_dir = Path(str(data_row[0])) if data_row else None
            except psycopg.Error:
                data_dir = None
        fs_bytes = sum(p.stat().st_size for p in blue.filestore.rglob("*") if p.is_file())
        same_fs = blue.filestore.exists() and (
            os.stat(blue.filestore).st_dev == os.stat(_existing(green.filestore.parent)).st_dev
        )
        need_fs = (0 if same_fs else fs_bytes) + _MARGIN
        free_fs = _free(green.filestore.parent)
        facts.update(db_bytes=db_bytes, filestore_bytes=fs_bytes)
        if free_fs < need_fs:
            raise PreconditionError(
                f"green's filestore needs {need_fs} bytes in {green.filestore.parent}, "
                f"{free_fs} free"
            )
        artifacts = project.config.artifacts_dir
        need_art = db_bytes // 2 + fs_bytes + _MARGIN
        free_art = _free(artifacts)
        if free_art < need_art:
            raise PreconditionError(
                f"the backups need about {need_art} bytes in {artifacts}, {free_art} free"
            )
        server = "the database server's disk is not visible from here"
        if data_dir is not None and data_dir.exists():
            free_db = shutil.disk_usage(data_dir).free
            if free_db < db_bytes + _MARGIN:
                raise PreconditionError(
                    f"green's database needs {db_bytes} bytes, {free_db} free on the server"
                )
            server = f"{free_db} bytes free for a {db_bytes}-byte copy"
        return (
            f"filestore {free_fs} free (need {need_fs}); "
            f"backups {free_art} (need {need_art}); {server}"
        )

    def no_enterprise() -> str:
        release = facts.get("staging_release")
        if not release:  # precondition 2 failed: scan what staging runs now
            releases = DeploySpec.resolve(project, staging_name).releases
            current = releases.current()
            if current is None:
                raise PreconditionError("staging runs no release")
            release = str(releases.path(current))
        modules = scan_addons(Path(release))
        report = enterprise_check(
            modules,
            project.config.settings.odoo.series or "",
            extra_enterprise=project.config.settings.odoo.enterprise_modules,
        )
        if not report.ok:
            raise PreconditionError(report.message())
        return f"{len(modules)} modules, no Enterprise module"

    def lock_free() -> str:
        waiting = [
            r
            for r in project.store.list_runs(
                target=env_lock(slots.name), status="awaiting_approval"
            )
            if r.run_id != resuming
        ]
        if waiting:
            raise PreconditionError(f"promotion {waiting[0].run_id} is waiting for approval")
        return f"this run holds {slots.name}'s lock"

    def active_healthy() -> str:
        active = slots.active()
        facts["active"] = active
        spec = slots.spec(project, active)
        if not spec.url:
            raise PreconditionError(f"slot {active} has no url")
        health = wait_health(spec.url, 10.0)
        if not health["passed"]:
            raise PreconditionError(f"the active slot {active} is not healthy: {health['last']}")
        return f"{active} is active ({slots.switch.describe().get('kind')}) and healthy"

    pre.add(7, "active slot healthy and switch answers", active_healthy)
    pre.add(1, "staging's last deploy succeeded", deploy_ok)
    pre.add(2, "staging's commit is the commit green will run", same_commit)
    pre.add(3, "permissions", permissions)
    pre.add(4, "disk space", disk_space)
    pre.add(5, "no Enterprise modules", no_enterprise)
    pre.add(6, "no other run holds production", lock_free)
    pre.checks.sort(key=lambda c: int(c["number"]))
    facts["data"] = data
    return pre


def _existing(path: Path) -> Path:
    while not path.exists():
        path = path.parent
    return path
