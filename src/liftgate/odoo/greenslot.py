"""The inactive slot of a promotion: green's data, code, update, start, and teardown.

Green is built in the slot that does not serve production: its previous database and
filestore are renamed aside (put back if the promotion fails, dropped when it succeeds),
staging's commit is exported into its releases, its data is a copy of blue (dump/restore
or TEMPLATE, filestore by hard links) or staging's artifact with production's identity and
outgoing side restored, its changed modules are updated through Odoo's own CLI, and it
starts read-only (no cron, no mail) until the cutover makes it production.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from liftgate.engine.project import Project
from liftgate.engine.runs import Run
from liftgate.errors import (
    GuardrailError,
    LiftgateError,
    OperationError,
    UsageError,
    VerificationError,
)
from liftgate.odoo import freeze as freezing
from liftgate.odoo import identity, modulehash, slotcopy
from liftgate.odoo.deploy import (
    DeploySpec,
    plan_modules,
    read_db_state,
    record_checksums,
    verify_versions,
)
from liftgate.odoo.enterprise import check as enterprise_check
from liftgate.odoo.env import OdooEnv, resolve_env
from liftgate.odoo.gitsource import GitSource
from liftgate.odoo.manifest import scan_addons
from liftgate.odoo.pgtools import (
    database_exists,
    rename_database,
    run_db_name,
)
from liftgate.odoo.prodslots import ProdSlots, Slot
from liftgate.odoo.restore import maintenance_connection, restore_into
from liftgate.odoo.service import run_command, wait_health
from liftgate.odoo.update import build_argv, run_update

__all__ = [
    "GreenNames",
    "load_green",
    "start_service",
    "stop_service",
    "teardown_green",
]

_LOG_TAIL = 200


@dataclass(frozen=True)
class GreenNames:
    """Names a promotion uses in the inactive slot, derived from the run id."""

    db: str
    filestore: str
    aside_db: str  # green's previous database, kept until the promotion succeeds
    aside_fs: str
    kept_db: str  # green after a rollback: kept for recovery, never dropped
    kept_fs: str

    @classmethod
    def make(cls, green: OdooEnv, run_id: str) -> GreenNames:
        fs = green.filestore
        return cls(
            db=green.db,
            filestore=str(fs),
            aside_db=run_db_name(green.db, "old", run_id),
            aside_fs=str(fs.parent / f".{fs.name}.old-{run_id}"),
            kept_db=run_db_name(green.db, "rbk", run_id),
            kept_fs=str(fs.parent / f"{fs.name}.rolled-back-{run_id}"),
        )


def green_aside(project: Project, run: Run, green: OdooEnv, names: GreenNames) -> None:
    """Green's previous database and filestore are renamed aside (kept until success)."""
    with run.step("green_aside") as detail:
        admin = maintenance_connection(green)
        try:
            if database_exists(admin, names.db) and not database_exists(admin, names.aside_db):
                slotcopy.rename_alone(admin, names.db, names.aside_db)
                detail["db"] = names.aside_db
        finally:
            admin.close()
        fs = Path(names.filestore)
        if fs.exists() and not Path(names.aside_fs).exists():
            fs.rename(names.aside_fs)
            detail["filestore"] = names.aside_fs


def green_code(
    project: Project, run: Run, slots: ProdSlots, plan: dict[str, Any], green: Slot
) -> DeploySpec:
    spec = slots.spec(project, green)
    with run.step("green_code") as detail:
        repo_value = slots.settings.repo or staging_repo(project, str(plan["staging"]))
        source = GitSource.from_setting(
            repo_value, project.config.base_dir, project.state_dir / "git"
        )
        sha = str(plan["commit"])
        with project.store.lock(f"git-mirror:{source.mirror.name}", wait=600):
            if not spec.releases.complete(sha):
                source.fetch()
                source.resolve(sha)
        detail["made"] = spec.releases.ensure(
            sha,
            lambda folder: source.export(sha, folder),
            {"repo": source.url, "run_id": run.run_id},
            project.durability,
        )
    return spec


def staging_repo(project: Project, staging: str) -> str:
    repo = project.config.settings.env[staging].repo
    if not repo:
        raise UsageError(f"neither the production env nor {staging} names a repo")
    return repo


def stop_service(spec: DeploySpec, what: str) -> None:
    if spec.service is not None and spec.service.stop:
        run_command(spec.service.stop, what)


def start_service(spec: DeploySpec, what: str) -> None:
    if spec.service is None:
        return
    if spec.service.start:
        run_command(spec.service.start, what)
    else:
        for argv in spec.service.restart_argvs():
            run_command(argv, what)


def load_green(
    project: Project,
    run: Run,
    slots: ProdSlots,
    plan: dict[str, Any],
    *,
    freeze_blue: bool,
    step: str,
) -> dict[str, Any]:
    """Green's data (copy of blue, or staging's artifact) and code, updated, started
    read-only, healthy. Returns what green_restore.json records."""
    blue_slot: Slot = plan["blue"]
    green_slot: Slot = plan["green"]
    green = slots.env(project, green_slot)
    blue = slots.env(project, blue_slot)
    names = GreenNames(**plan["green_names"])
    spec = green_code(project, run, slots, plan, green_slot)
    stop_service(spec, "stopping green's service")
    green_aside(project, run, green, names)
    report: dict[str, Any] = {"slot": green_slot, "db": names.db, "data": plan["data"]}
    admin = maintenance_connection(blue)
    try:
        if freeze_blue:
            with run.step("freeze", durable=True) as detail:
                info = freezing.freeze(admin, blue.db)
                detail.update(info.as_dict())
                detail["at"] = time.time()
        with run.step(f"{step}_copy", durable=True) as detail:
            started = time.monotonic()
            if plan["data"] == "production":
                if plan["copy"] == "template":
                    copied = slotcopy.copy_template(admin, blue.db, names.db)
                else:
                    copied = slotcopy.copy_dump(blue, blue.db, names.db, redactor=project.redactor)
                report["copy"] = copied.as_dict()
                report["filestore"] = slotcopy.copy_filestore(blue.filestore, Path(names.filestore))
            else:
                report["restore"] = restore_staging(project, run, plan, green, blue, names)
            report["data_seconds"] = round(time.monotonic() - started, 3)
            outage = float(report.get("copy", {}).get("outage_seconds", 0.0))
            detail.update(seconds=report["data_seconds"], outage_seconds=outage)
    finally:
        admin.close()
    with run.step(f"{step}_update", durable=True) as detail:
        report["update"] = update_green(project, run, spec, green, plan)
        detail.update(seconds=report["update"]["seconds"], modules=report["update"]["update"])
    with run.step(f"{step}_start", durable=True) as detail:
        gadmin = maintenance_connection(green)
        try:
            freezing.freeze(gadmin, names.db)  # no cron, no mail before it serves production
        finally:
            gadmin.close()
        spec.releases.switch(str(plan["commit"]))
        start_service(spec, "starting green's service")
        if spec.url is None:
            raise UsageError(f"env.{slots.name}.slots.{green_slot} needs url (its direct URL)")
        health = wait_health(spec.url, spec.health_timeout)
        report["health"] = health
        detail.update(passed=health["passed"])
        if not health["passed"]:
            raise VerificationError(
                f"green's {spec.url}/web/health did not pass (last: {health['last']})"
            )
    return report


def restore_staging(
    project: Project,
    run: Run,
    plan: dict[str, Any],
    green: OdooEnv,
    blue: OdooEnv,
    names: GreenNames,
) -> dict[str, Any]:
    """--data staging: staging's artifact into green, then production's identity and
    outgoing side (mail servers, crons) from blue; refused when they cannot be matched."""
    with blue.connect() as conn:
        ident = identity.read_identity(conn)
        outgoing = identity.read_outgoing(conn)
    artifact = str(run.detail_of("staging_snapshot")["artifact_id"])
    restored = restore_into(project, artifact, green, names.db, Path(names.filestore))
    with green.connect(names.db) as conn:
        identity.apply_identity(conn, ident)
        changed = identity.restore_outgoing(conn, outgoing)
        unmatched = changed.get("unmatched") or []
        if unmatched:
            conn.rollback()
            raise GuardrailError(
                "staging's data is neutralized and production's mail servers or crons cannot "
                f"be restored on it ({', '.join(map(str, unmatched[:5]))}); refusing to promote "
                "a neutralized database"
            )
        conn.commit()
    return {
        "artifact_id": artifact,
        "restore": restored,
        "identity": sorted(ident),
        "outgoing": changed,
    }


def update_green(
    project: Project, run: Run, spec: DeploySpec, green: OdooEnv, plan: dict[str, Any]
) -> dict[str, Any]:
    """Update green's changed modules (and install what staging has installed) with
    Odoo's CLI on the new release; versions verified; checksums recorded."""
    sha = str(plan["commit"])
    release = spec.releases.path(sha)
    green_db = GreenNames(**plan["green_names"]).db
    series, installed, recorded, known = read_db_state(green)
    staging = resolve_env(project, str(plan["staging"]))
    _, staging_installed, _, _ = read_db_state(staging)
    scanned = scan_addons(release)
    current = modulehash.checksums(scanned)
    report = enterprise_check(
        scanned,
        series,
        extra_enterprise=project.config.settings.odoo.enterprise_modules,
        known=known,
    )
    install = sorted(
        m.name for m in scanned if m.name in staging_installed and m.name not in installed
    )
    entries, update, to_install = plan_modules(
        scanned, report, installed, recorded, current, "auto", install
    )
    argv = build_argv(
        spec.template,
        {
            "odoo_bin": spec.odoo_bin,
            "odoo_conf": str(spec.odoo_conf),
            "addons_path": spec.addons_path_for(release),
            "db": green_db,
            "update": update,
            "install": to_install,
        },
    )
    log = run.evidence.dir / ".green-update.log"
    outcome = run_update(argv, log, timeout=spec.update_timeout)
    tail = log.read_text("utf-8", errors="replace").splitlines()[-_LOG_TAIL:]
    log.unlink()
    result: dict[str, Any] = {
        **outcome.as_dict(),
        "update": update,
        "install": to_install,
        "log_tail": tail,
    }
    if not outcome.ok:
        errors = [ln for ln in tail if " ERROR " in ln or " CRITICAL " in ln]
        raise OperationError(
            f"green's module update failed: {(errors or tail or ['no output'])[0][:300]}"
        )
    if update or to_install:
        result["verified"] = verify_versions(
            green, {"install": to_install, "modules": entries, "series": series}
        )
    result["checksums_recorded"] = len(record_checksums(green, current))
    return result


def teardown_green(
    project: Project, slots: ProdSlots, plan: dict[str, Any], *, restore_aside: bool
) -> list[str]:
    """Stop green's service and remove what this run put in the green slot."""
    done: list[str] = []
    names = GreenNames(**plan["green_names"])
    green_slot: Slot = plan["green"]
    green = slots.env(project, green_slot)
    try:
        spec = slots.spec(project, green_slot)
        stop_service(spec, "stopping green's service")
        done.append("green service stopped")
    except LiftgateError as exc:
        done.append(f"green service: {exc}")
        spec = None
    admin = maintenance_connection(green)
    try:
        if database_exists(admin, names.db):
            slotcopy.drop_database(admin, names.db)
            done.append(f"green database {names.db} dropped")
        if restore_aside and database_exists(admin, names.aside_db):
            rename_database(admin, names.aside_db, names.db)
            done.append(f"green's previous database {names.db} put back")
    finally:
        admin.close()
    shutil.rmtree(names.filestore, ignore_errors=True)
    if restore_aside and Path(names.aside_fs).exists():
        Path(names.aside_fs).rename(names.filestore)
        done.append("green's previous filestore put back")
    return done
