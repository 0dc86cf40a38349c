"""``liftgate odoo deploy ENV --commit SHA``: Odoo modules from git, with a way back.

Order, and why:

1. Plan, changing nothing: fetch the addons repository into liftgate's mirror, resolve the
   commit to its full SHA, export its tree into a temp folder, scan every manifest
   (``ast.literal_eval``), refuse Enterprise modules (``forbid_enterprise_modules``), and
   compare each module's checksum with the ones recorded in the database at the last
   deploy to decide which installed modules to update. ``--dry-run`` stops here.
2. The release is published as ``releases/<sha>/`` (not live: ``current`` is unchanged).
3. The service is stopped (when a ``stop`` command is configured), then the way back is
   made before anything live changes: on production a verified backup (an artifact), and on
   every env a fast copy of the database (``CREATE DATABASE ... TEMPLATE``) plus a
   hard-linked copy of the filestore.
4. The update runs through Odoo's own CLI (``update_command``) on the new release's code;
   its log goes (redacted) into the evidence; the installed versions are checked against
   the manifests; the new checksums are written into the database.
5. ``current`` is switched to the new release, the service restarted, ``/web/health``
   waited for and the smoke checks run.
6. The commit point: the ``commit`` step is journaled. Any failure before it (or
   ``liftgate recover`` after a crash) puts the database and filestore back from the copies
   and ``current`` back on the old release, and restarts the service. After it, the copies
   are dropped and old releases pruned (``keep_releases``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from liftgate.artifacts.repository import ArtifactRepository
from liftgate.engine.guardrails import Guardrails
from liftgate.engine.project import Project
from liftgate.engine.recovery import lock_name, recover
from liftgate.engine.runs import Run, new_run_id
from liftgate.envconfig import CodeSettings, EnvSettings, ServiceCommands, SmokeCheck
from liftgate.errors import (
    ConfigError,
    GuardrailError,
    LiftgateError,
    OperationError,
    UsageError,
    VerificationError,
)
from liftgate.odoo import enterprise, modulehash, slotcopy
from liftgate.odoo.backup import backup, env_lock
from liftgate.odoo.deployundo import DeployNames, finish_deploy, undo_deploy
from liftgate.odoo.env import OdooEnv, resolve_env
from liftgate.odoo.gitsource import GitSource
from liftgate.odoo.manifest import ModuleManifest, full_version, scan_addons
from liftgate.odoo.releases import Releases
from liftgate.odoo.restore import maintenance_connection
from liftgate.odoo.service import is_running, run_command, run_smoke, wait_health
from liftgate.odoo.update import DEFAULT_TEMPLATE, build_argv, run_update

__all__ = [
    "EVIDENCE",
    "KIND",
    "SKILL",
    "DeployNames",
    "DeployResult",
    "DeploySpec",
    "deploy",
    "plan_modules",
    "read_db_state",
    "record_checksums",
    "run_result",
    "verify_versions",
]

KIND = "odoo.deploy"
SKILL = "deploy-odoo-modules-git"
EVIDENCE = (
    "inputs.json",
    "run_id.txt",
    "git.json",
    "modules.json",
    "backup.json",
    "update.log",
    "health.json",
    "final_status.json",
    "summary.md",
    "MANIFEST.sha256",
)


@dataclass
class DeployResult:
    status: str
    message: str
    run_id: str | None
    env: str
    commit: str | None
    evidence_path: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "action": "odoo deploy",
            "run_id": self.run_id,
            "env": self.env,
            "commit": self.commit,
            "evidence_path": self.evidence_path,
            "message": self.message,
            **self.extra,
        }


@dataclass(frozen=True)
class DeploySpec:
    """The deploy settings of one env (or one slot of a production env), resolved."""

    env: OdooEnv
    releases: Releases
    odoo_bin: str
    odoo_conf: Path
    template: list[str]
    addons_path: list[str]
    current_entry: int  # index in addons_path of the entry that is ``current``
    repo: str | None
    service: ServiceCommands | None
    url: str | None
    health_timeout: float
    update_timeout: float
    smoke: tuple[SmokeCheck, ...]
    keep_releases: int

    @classmethod
    def resolve(cls, project: Project, env_name: str) -> DeploySpec:
        envs = project.config.settings.env
        parent = envs.get(env_name.rpartition(".")[0]) if "." in env_name else None
        settings = envs.get(env_name)
        if (settings is not None and settings.slots is not None) or (
            settings is None and parent is not None and parent.slots is not None
        ):
            prod = env_name if settings is not None else env_name.rpartition(".")[0]
            raise GuardrailError(
                f"env {prod} has blue/green slots: it receives code only through "
                f"promotion (liftgate odoo promote <staging> {prod})"
            )
        env = resolve_env(project, env_name)  # names the known envs when unknown
        assert settings is not None
        return cls.build(project, env, settings, settings)

    @classmethod
    def build(
        cls, project: Project, env: OdooEnv, code: CodeSettings, settings: EnvSettings
    ) -> DeploySpec:
        """From ``code`` (an env's or a slot's keys), falling back on the env's ``settings``."""

        def pick(key: str) -> Any:
            value = getattr(code, key)
            return value if value is not None else getattr(settings, key)

        base = project.config.base_dir
        missing = [k for k in ("releases", "odoo_conf", "odoo_bin") if not pick(k)]
        if missing:
            raise ConfigError(f"env.{env.name} needs {', '.join(missing)} to deploy code")
        releases = Releases((base / pick("releases")).resolve())
        odoo_bin = str(pick("odoo_bin"))
        if "/" in odoo_bin:
            odoo_bin = str((base / odoo_bin).resolve())
            if not Path(odoo_bin).is_file():
                raise ConfigError(f"env.{env.name}.odoo_bin {odoo_bin} does not exist")
        elif shutil.which(odoo_bin) is None:
            raise ConfigError(f"env.{env.name}.odoo_bin {odoo_bin!r} is not on PATH")
        conf = (base / pick("odoo_conf")).resolve()
        entries = [e.strip() for e in (env.addons_path or "").split(",") if e.strip()]
        current_entry = -1
        for index, entry in enumerate(entries):
            if Path(entry).absolute() == releases.current_link:
                current_entry = index
        if current_entry < 0:
            raise ConfigError(
                f"the addons_path of {conf} does not include {releases.current_link}; "
                "Odoo must load the deployed release through the current symlink"
            )
        return cls(
            env=env,
            releases=releases,
            odoo_bin=odoo_bin,
            odoo_conf=conf,
            template=list(pick("update_command") or DEFAULT_TEMPLATE),
            addons_path=entries,
            current_entry=current_entry,
            repo=settings.repo,
            service=pick("service"),
            url=pick("url"),
            health_timeout=float(code.health_timeout),
            update_timeout=float(code.update_timeout),
            smoke=tuple(settings.smoke),
            keep_releases=settings.keep_releases,
        )

    def addons_path_for(self, release: Path) -> str:
        entries = list(self.addons_path)
        entries[self.current_entry] = str(release)
        return ",".join(entries)


def _modules_option(modules: str) -> str | list[str]:
    if modules in ("auto", "all"):
        return modules
    names = [m.strip() for m in modules.split(",") if m.strip()]
    if not names or not all(_valid_module(n) for n in names):
        raise UsageError(f"--modules must be auto, all or a comma-separated list, not {modules!r}")
    return names


def _valid_module(name: str) -> bool:
    return name.isidentifier() and name.isascii()


def read_db_state(env: OdooEnv) -> tuple[str, dict[str, str], dict[str, str], set[str]]:
    """(series, installed name → latest_version, recorded checksums, every known name)."""
    with env.connect() as conn:
        rows = conn.execute("SELECT name, state, latest_version FROM ir_module_module").fetchall()
        recorded = modulehash.read_recorded(conn)
    installed = {
        str(name): str(version or "")
        for name, state, version in rows
        if state in ("installed", "to upgrade")
    }
    base = installed.get("base", "")
    series = ".".join(base.split(".")[:2]) if base.count(".") >= 1 else ""
    return series, installed, recorded, {str(r[0]) for r in rows}


def plan_modules(
    scanned: Sequence[ModuleManifest],
    report: enterprise.EnterpriseReport,
    installed: dict[str, str],
    recorded: dict[str, str],
    current: dict[str, str],
    option: str | list[str],
    install: Sequence[str],
) -> tuple[list[dict[str, Any]], list[str], list[str]]:
    by_name = {m.name: m for m in scanned}
    first = not recorded
    for name in install:
        if name not in by_name:
            raise UsageError(f"--install {name}: there is no module {name} in the repository")
        if name in installed:
            raise UsageError(f"--install {name}: module {name} is already installed")
    if isinstance(option, list):
        for name in option:
            if name not in by_name:
                raise UsageError(f"--modules {name}: there is no module {name} in the repository")
            if name not in installed:
                raise UsageError(
                    f"--modules {name}: module {name} is not installed (install it with --install)"
                )
    offending = set(report.offending)
    entries: list[dict[str, Any]] = []
    update: list[str] = []
    for module in scanned:
        is_installed = module.name in installed
        if not module.installable or not is_installed:
            wanted = False
        elif option == "all":
            wanted = True
        elif isinstance(option, list):
            wanted = module.name in option
        else:
            wanted = first or recorded.get(module.name) != current[module.name]
        if wanted:
            update.append(module.name)
        entries.append(
            {
                "name": module.name,
                "version": module.version,
                "license": module.license,
                "depends": list(module.depends),
                "enterprise": module.name in offending,
                "installable": module.installable,
                "installed": is_installed,
                "installed_version": installed.get(module.name),
                "update": wanted,
                "install": module.name in install,
                "available": module.installable and not is_installed,
                "checksum": current[module.name],
                "recorded_checksum": recorded.get(module.name),
            }
        )
    return entries, update, list(install)


@contextlib.contextmanager
def _exported(project: Project, source: GitSource, sha: str, releases: Releases) -> Iterator[Path]:
    """The commit's tree: the published release, else a scratch export in the state dir
    (scanned for the plan, then adopted as the release by ``_adopt``; removed after)."""
    if releases.complete(sha):
        yield releases.path(sha)
        return
    scratch = project.state_dir / "tmp"
    scratch.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = Path(tempfile.mkdtemp(prefix="deploy-", dir=scratch))
    try:
        tree = tmp / "tree"
        source.export(sha, tree)
        yield tree
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _adopt(tree: Path, source: GitSource, sha: str, folder: Path) -> None:
    """Make ``folder`` the release: the tree exported for the plan, moved when it is on the
    same file system, else exported again."""
    try:
        os.rename(tree, folder)
    except OSError:
        source.export(sha, folder)


def deploy(
    project: Project,
    env_name: str,
    *,
    commit: str,
    repo: str | None = None,
    modules: str = "auto",
    install: Sequence[str] = (),
    dry_run: bool = False,
    wait: float | None = None,
    unsafe: Collection[str] = (),
) -> DeployResult:
    """Deploy ``commit`` of the env's addons repository; see the module docstring."""
    spec = DeploySpec.resolve(project, env_name)
    guardrails = Guardrails.for_skill(project, SKILL, unsafe)
    guardrails.hold("explicit_target", f"env {env_name} and commit {commit} are named")
    env = spec.env
    option = _modules_option(modules)
    for name in install:
        if not _valid_module(name):
            raise UsageError(f"--install takes module names, not {name!r}")
    repo_value = repo or spec.repo
    if not repo_value:
        raise ConfigError(f"env.{env_name} has no repo; give one with --repo")
    source = GitSource.from_setting(repo_value, project.config.base_dir, project.state_dir / "git")
    with (
        contextlib.ExitStack() as scratch,
        project.store.lock(lock_name(env_lock(env.name)), wait=wait),
    ):
        recover(project, target=env_lock(env.name), lock_held=True)
        with project.store.lock(f"git-mirror:{source.mirror.name}", wait=600):
            source.fetch()
            sha = source.resolve(commit)
            info = source.info(sha)
        previous = spec.releases.current()
        series, installed, recorded, known = read_db_state(env)
        series = project.config.settings.odoo.series or series
        tree = scratch.enter_context(_exported(project, source, sha, spec.releases))
        scanned = scan_addons(tree)
        current = modulehash.checksums(scanned)
        report = enterprise.check(
            scanned,
            series,
            extra_enterprise=project.config.settings.odoo.enterprise_modules,
            known=known,
        )
        entries, update, to_install = plan_modules(
            scanned, report, installed, recorded, current, option, install
        )
        # --modules all is Odoo's own "-u all" (every installed module, core ones included)
        update_arg = (["all"] if installed else []) if option == "all" else update
        run_id = new_run_id()
        names = DeployNames.make(env, run_id)
        release = spec.releases.path(sha)
        argv = build_argv(
            spec.template,
            {
                "odoo_bin": spec.odoo_bin,
                "odoo_conf": str(spec.odoo_conf),
                "addons_path": spec.addons_path_for(release),
                "db": env.db,
                "update": update_arg,
                "install": to_install,
            },
        )
        plan: dict[str, Any] = {
            "action": "deploy",
            "env": env.name,
            "role": env.role,
            "db": env.db,
            "filestore": str(env.filestore),
            "repo": source.url,
            "requested": commit,
            "commit": sha,
            "previous_commit": previous,
            "release": str(release),
            "releases": str(spec.releases.root),
            "series": series,
            "modules": entries,
            "update": update_arg,
            "install": to_install,
            "first_deploy": not recorded,
            "enterprise": report.as_dict(),
            "update_argv": argv,
            "way_back": {
                "backup": env.role == "production",
                "db_copy": names.copy_db,
                "filestore_copy": names.copy_fs,
            },
            "names": names.__dict__,
            "service": spec.service.model_dump() if spec.service else None,
            "url": spec.url,
            "health_timeout": spec.health_timeout,
            "smoke": [c.model_dump() for c in spec.smoke],
            "keep_releases": spec.keep_releases,
        }
        guardrails.check(
            "forbid_enterprise_modules",
            report.ok,
            report.message() if not report.ok else f"{len(scanned)} modules, none Enterprise",
            hint="remove them from the repository or deploy a commit without them",
        )
        for name, detail in (
            ("verify_after_write", "versions against the manifests, health and smoke checks"),
            ("evidence_required", "this run's evidence is sealed by MANIFEST.sha256"),
        ):
            guardrails.hold(name, detail)
        if dry_run:
            return DeployResult(
                status="OK",
                message=f"dry run: would deploy {sha[:12]} to {env.name}: "
                f"update {_names(update_arg)}, install {_names(to_install)}",
                run_id=None,
                env=env.name,
                commit=sha,
                extra={"dry_run": True, "plan": plan},
            )
        run = Run.start(
            project,
            run_id=run_id,
            kind=KIND,
            action="deploy",
            target=env_lock(env.name),
            plan=plan,
            inputs={
                "command": "odoo deploy",
                "env": env_name,
                "commit": commit,
                "repo": repo,
                "modules": modules,
                "install": list(install),
            },
            guardrails=guardrails,
        )
        run.evidence.write_json(
            "git.json",
            {
                "repo": source.url,
                "requested": commit,
                "commit": info.as_dict(),
                "previous_commit": previous,
                "changed_paths": source.changed_paths(previous, sha)
                if previous and previous != sha and spec.releases.complete(previous)
                else None,
            },
        )
        run.evidence.write_json(
            "modules.json",
            {
                "series": series,
                "scanned": len(entries),
                "modules": entries,
                "enterprise": report.as_dict(),
                "changed": sorted(modulehash.changed(current, recorded)),
                "update": update_arg,
                "install": to_install,
                "checksums": current,
                "recorded_before": recorded,
            },
        )
        return _execute(project, run, spec, source, tree, names, plan, current)


def _names(items: Sequence[str]) -> str:
    return ", ".join(items) if items else "nothing"


def _execute(
    project: Project,
    run: Run,
    spec: DeploySpec,
    source: GitSource,
    tree: Path,
    names: DeployNames,
    plan: dict[str, Any],
    current: dict[str, str],
) -> DeployResult:
    env = spec.env
    sha = str(plan["commit"])
    service = spec.service
    health: dict[str, Any] = {"health": None, "smoke": []}
    try:
        with run.step("release") as detail:
            detail["made"] = spec.releases.ensure(
                sha,
                lambda folder: _adopt(tree, source, sha, folder),
                {"repo": source.url, "run_id": run.run_id},
                project.durability,
            )
        with run.step("stop", durable=True) as detail:
            detail["stopped"] = False
            # without a status command the service is taken as running
            detail["was_running"] = (
                is_running(service.status) if service is not None and service.status else True
            )
            run.mark("service", "noted", {"was_running": detail["was_running"]}, flush=True)
            if service is not None and service.stop:
                run_command(service.stop, f"stopping env {env.name}'s service")
                detail["stopped"] = True
        with run.step("way_back", durable=True) as detail:
            detail.update(_make_way_back(project, run, spec, names))
        with run.step("update", durable=True) as detail:
            log = run.evidence.dir / ".update.log.raw"
            outcome = run_update(list(plan["update_argv"]), log, timeout=spec.update_timeout)
            run.evidence.write_text("update.log", log.read_text("utf-8", errors="replace"))
            log.unlink()
            detail.update(outcome.as_dict())
            if not outcome.ok:
                why = "timed out" if outcome.timed_out else f"exit status {outcome.returncode}"
                raise OperationError(
                    f"the module update failed ({why}): {_log_error(run)}",
                    hint=f"the whole log is in {run.evidence.dir / 'update.log'}",
                )
        with run.step("verify") as detail:
            detail["modules"] = verify_versions(env, plan)
        with run.step("checksums") as detail:
            recorded = record_checksums(env, current)
            detail["recorded"] = len(recorded)
        with run.step("switch", durable=True) as detail:
            spec.releases.switch(sha)
            detail["current"] = sha
        with run.step("restart", durable=True) as detail:
            if service is not None:
                argvs = [service.start] if service.start and service.stop else []
                argvs = argvs or service.restart_argvs()
                for argv in argvs:
                    run_command(argv, f"restarting env {env.name}'s service")
                detail["commands"] = argvs
        with run.step("health") as detail:
            if spec.url:
                health["health"] = wait_health(spec.url, spec.health_timeout)
                detail.update(health["health"])
                if not health["health"]["passed"]:
                    raise VerificationError(
                        f"{spec.url}/web/health did not pass within "
                        f"{spec.health_timeout:.0f} s (last: {health['health']['last']})"
                    )
        with run.step("smoke") as detail:
            health["smoke"] = _smoke(spec.url, spec.smoke)
            failed = [c for c in health["smoke"] if not c["passed"]]
            detail["failed"] = len(failed)
            if failed:
                first = failed[0]
                raise VerificationError(
                    f"smoke check {first['path']} failed: {first.get('error')}"
                    + (f" (and {len(failed) - 1} more)" if len(failed) > 1 else "")
                )
        with run.step("commit", durable=True):
            pass
    except BaseException as exc:
        message = str(exc) if isinstance(exc, LiftgateError) else f"{type(exc).__name__}: {exc}"
        guardrails = run.guardrails
        if guardrails is None or guardrails.enabled("rollback_default"):
            if guardrails is not None:
                guardrails.record("rollback_default", "enforced", "the failure was put back")
            undo = undo_deploy(project, run, spec.env, names, plan, restart=True)
        else:
            guardrails.record(
                "rollback_default", "disabled_unsafe", "the failed state was left as it is"
            )
            undo = {"run_id": run.run_id, "reverted": [], "errors": [], "left_as_failed": True}
        health["after_rollback"] = undo.get("health")
        run.evidence.write_json("health.json", health)
        if not run.evidence.has("backup.json"):
            run.evidence.write_json("backup.json", {"backup": None, "note": "not reached"})
        if not run.evidence.has("update.log"):
            run.evidence.write_text("update.log", "(the update did not run)\n")
        run.finish(
            status="failed",
            message=f"deploy of {sha[:12]} to {env.name} failed: {message}",
            result=run_result(plan, "failed", rolled_back=undo),
            summary=_summary(run.run_id, plan, "FAIL", message, undo),
            extra={"rollback.json": undo},
        )
        if not isinstance(exc, Exception):
            raise  # KeyboardInterrupt, SystemExit: undone above, passed on as they are
        kept = "put back" if not undo["errors"] else "NOT fully put back"
        raise OperationError(
            f"deploy of {sha[:12]} to {env.name} failed: {message}; database, filestore and "
            f"current were {kept} (run {run.run_id})",
            hint=f"evidence: {run.evidence.dir}",
        ) from exc
    run.evidence.write_json("health.json", health)
    cleanup = finish_deploy(project, run, spec.releases, names, plan)
    message = (
        f"deployed {sha[:12]} to {env.name}: updated {_names(plan['update'])}, "
        f"installed {_names(plan['install'])}"
    )
    run.finish(
        status="ok",
        message=message,
        result=run_result(plan, "ok", cleanup=cleanup),
        summary=_summary(run.run_id, plan, "OK", message, None),
    )
    return DeployResult(
        status="OK",
        message=message,
        run_id=run.run_id,
        env=env.name,
        commit=sha,
        evidence_path=str(run.evidence.dir),
        extra={
            "release": plan["release"],
            "updated": plan["update"],
            "installed": plan["install"],
            "previous_commit": plan["previous_commit"],
        },
    )


def _smoke(url: str | None, checks: Sequence[SmokeCheck]) -> list[dict[str, Any]]:
    if not checks:
        return []
    if not url:
        raise ConfigError("smoke checks are configured but the env has no url")
    return run_smoke(url, checks)


def _log_error(run: Run) -> str:
    """The first ERROR/CRITICAL line of the saved update log (or its last line)."""
    try:
        lines = (run.evidence.dir / "update.log").read_text("utf-8").splitlines()
    except OSError:
        return "no log"
    for line in lines:
        if " ERROR " in line or " CRITICAL " in line:
            return line.strip()[:300]
    tail = [ln for ln in lines if ln.strip()]
    return tail[-1].strip()[:300] if tail else "no output"


def _make_way_back(
    project: Project, run: Run, spec: DeploySpec, names: DeployNames
) -> dict[str, Any]:
    """A verified backup on production; a database copy and a filestore copy everywhere."""
    env = spec.env
    detail: dict[str, Any] = {"backup": None}
    guardrails = run.guardrails
    if guardrails is not None and not guardrails.enabled("backup_before_write"):
        guardrails.record(
            "backup_before_write", "disabled_unsafe", "no way back was made before the update"
        )
        detail.update(db_copy=None, filestore_copy=None, skipped="backup_before_write off")
        run.evidence.write_json("backup.json", detail)
        return detail
    if guardrails is not None:
        guardrails.record("backup_before_write", "enforced", "a way back is made first")
    if env.role == "production":
        result = backup(project, env.name, lock_held=True)
        repo = ArtifactRepository(project.config.artifacts_dir)
        assert result.artifact_id is not None
        problems = repo.verify(result.artifact_id, read_data=True)
        if problems:
            raise VerificationError(
                f"the backup taken before the deploy does not verify: {problems[0]}"
            )
        detail["backup"] = {"artifact_id": result.artifact_id, "run_id": result.run_id}
    admin = maintenance_connection(env)
    try:
        detail["db_copy"] = {
            "name": names.copy_db,
            **slotcopy.copy_template(admin, env.db, names.copy_db).as_dict(),
        }
    finally:
        admin.close()
    detail["filestore_copy"] = (
        {"path": names.copy_fs, **slotcopy.copy_filestore(env.filestore, Path(names.copy_fs))}
        if env.filestore.is_dir()
        else None
    )
    run.evidence.write_json("backup.json", detail)
    return detail


def verify_versions(env: OdooEnv, plan: dict[str, Any]) -> list[dict[str, Any]]:
    """Every updated or installed module is installed at its manifest's version."""
    wanted = {str(n) for n in plan["install"]}
    wanted |= {m["name"] for m in plan["modules"] if m["update"]}
    by_name = {m["name"]: m for m in plan["modules"]}
    with env.connect() as conn:
        rows = {
            str(name): (str(state), str(version or ""))
            for name, state, version in conn.execute(
                "SELECT name, state, latest_version FROM ir_module_module WHERE name = ANY(%s)",
                (sorted(wanted),),
            )
        }
    checked = []
    for name in sorted(wanted):
        expected = full_version(by_name[name]["version"], str(plan["series"]))
        state, version = rows.get(name, ("absent", ""))
        checked.append({"name": name, "state": state, "version": version, "expected": expected})
        if state != "installed" or (plan["series"] and version != expected):
            raise VerificationError(
                f"after the update module {name} is {state} at version {version or 'none'}, "
                f"expected installed at {expected}"
            )
    return checked


def record_checksums(env: OdooEnv, current: dict[str, str]) -> dict[str, str]:
    """Record the checksums of the modules installed now (the next deploy compares)."""
    with env.connect() as conn:
        installed = {
            str(r[0])
            for r in conn.execute(
                "SELECT name FROM ir_module_module WHERE state = 'installed'"
            ).fetchall()
        }
        recorded = {name: cs for name, cs in current.items() if name in installed}
        modulehash.write_recorded(conn, recorded)
    return recorded


def run_result(plan: dict[str, Any], status: str, **more: Any) -> dict[str, Any]:
    return {
        "env": plan["env"],
        "commit": plan["commit"],
        "previous_commit": plan["previous_commit"],
        "release": plan["release"],
        "updated": plan["update"],
        "installed": plan["install"],
        "checksums": {m["name"]: m["checksum"] for m in plan["modules"]},
        "deploy_status": status,
        **more,
    }


def _summary(
    run_id: str, plan: dict[str, Any], verdict: str, message: str, undo: dict[str, Any] | None
) -> str:
    lines = [
        f"# liftgate deploy {run_id}: {verdict}",
        "",
        message,
        "",
        f"- env: {plan['env']} ({plan['role']}), database {plan['db']}",
        f"- commit: {plan['commit']} (asked for {plan['requested']})",
        f"- previous release: {plan['previous_commit'] or 'none'}",
        f"- updated: {_names(plan['update'])}",
        f"- installed: {_names(plan['install'])}",
        f"- modules scanned: {len(plan['modules'])}",
    ]
    if undo is not None:
        lines += [
            "",
            "## Way back",
            f"- put back: {', '.join(undo['reverted']) or 'nothing was changed'}",
        ]
        lines += [f"- NOT put back: {e}" for e in undo["errors"]]
    return "\n".join(lines) + "\n"
