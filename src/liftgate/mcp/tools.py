"""The tools ``liftgate mcp`` serves, independent of the MCP SDK (``server.py`` wires them).

Each tool takes one input model and returns one JSON object in the CLI's contract
(``status``, ``action``, ``run_id``, ``message``, ...; every ``FAIL`` has a stable ``error``
code). Tools that change something (``MUTATING``) take the operation's request model from
``liftgate.requests`` plus ``approval_id``:

1. without ``approval_id`` (and not a dry run) they change nothing: they plan (a dry run
   where the operation has one, a description otherwise), record a pending approval in the
   ops store and answer ``APPROVAL_REQUIRED`` with its id and "a person runs: liftgate
   approve <id>" — unless the env's settings say ``approval = "auto"`` (never production);
2. with the approved ``approval_id`` and the same arguments, the approval is used up
   (once) and the operation runs as ``python -m liftgate ... --json`` in a detached process
   whose run id is known at once (``STARTED``; ``run_show`` follows it).
   ``stage_promote_safe`` is quick: its answer waits for the result.

No tool can approve anything: approvals come from a person at the command line.
"""

from __future__ import annotations

import contextlib
import json
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar, get_origin

from pydantic import BaseModel, ConfigDict, Field

from liftgate.config import CONFIG_NAME
from liftgate.engine import approvals
from liftgate.engine.project import Project
from liftgate.engine.redaction import Redactor
from liftgate.engine.runs import new_run_id
from liftgate.errors import ConfigError, LiftgateError, UsageError
from liftgate.mcp.jobs import Jobs
from liftgate.requests import (
    BackupInput,
    DeployInput,
    FilePromoteInput,
    PromoteInput,
    RestoreInput,
    build,
)
from liftgate.store.base import RunRecord

__all__ = [
    "ERROR_BY_EXIT",
    "MUTATING",
    "READ_ONLY",
    "ArtifactsListInput",
    "EvidenceVerifyInput",
    "Mutation",
    "Query",
    "RunShowInput",
    "RunsListInput",
    "StatusInput",
    "ToolResult",
    "Workspace",
]

# The exit codes of liftgate's errors and their stable codes (liftgate.errors).
ERROR_BY_EXIT = {
    2: "usage",
    3: "guardrail",
    4: "locked",
    5: "verification",
    6: "integrity",
    7: "store",
    8: "operation",
}
RUN_ID = r"^\d{8}-\d{6}-[0-9a-f]{6}$"
SYNC_SECONDS = 60.0  # how long stage_promote_safe waits for its run before answering STARTED

M = TypeVar("M", bound=BaseModel)

Status = Literal["OK", "NOOP", "FAIL", "PAUSED", "APPROVAL_REQUIRED", "STARTED"]


class ToolResult(BaseModel):
    """What every tool returns: liftgate's JSON output contract (more keys per tool)."""

    model_config = ConfigDict(extra="allow")

    status: Status = Field(
        description="OK or NOOP: done (NOOP: nothing needed doing). FAIL: refused or failed "
        "(see error, message, hint). PAUSED: the run waits for a person's 'liftgate approve "
        "RUN_ID'. APPROVAL_REQUIRED: nothing was changed; a person must run 'liftgate approve "
        "<approval_id>', then call again with the same arguments and approval_id. STARTED: "
        "running in the background as run_id; poll run_show until finished is true."
    )
    action: str = Field(description="The liftgate command this corresponds to.")
    run_id: str | None = Field(description="The run (see run_show, evidence_verify), if any.")
    message: str = Field(description="One sentence saying what happened.")
    error: str | None = Field(
        default=None,
        description="On FAIL, a stable code: usage, config, path, guardrail, drift, locked, "
        "verification, integrity, store, operation, switch or internal.",
    )
    hint: str | None = Field(default=None, description="On FAIL, what to do about it.")


class Workspace:
    """The project the server serves, opened afresh (in the calling thread) for each call.

    Found like the CLI finds it (``config``, else liftgate.toml upward from ``cwd``); a
    client starts the server in any folder, so relative paths in tool calls are relative to
    the project folder (the folder of liftgate.toml), where the background runs start too.
    """

    def __init__(self, config: Path | None, cwd: Path | None = None) -> None:
        project = Project.open(config, cwd=cwd)
        try:
            self.config_path = project.config.path
            self.cwd = project.config.base_dir
            self.redactor = project.redactor
            self.jobs = Jobs(project.state_dir / "mcp" / "jobs")
        finally:
            project.close()
        # the person approving may be anywhere: name the config the server was given
        explicit = config is not None and self.config_path is not None
        self.approve_cmd = f"liftgate --config {self.config_path}" if explicit else "liftgate"

    @contextlib.contextmanager
    def project(self) -> Iterator[Project]:
        project = Project.open(self.config_path, cwd=self.cwd)
        try:
            yield project
        finally:
            project.close()

    def approve_instruction(self, approval_id: str) -> str:
        return f"a person runs: {self.approve_cmd} approve {approval_id}"


def contract(payload: dict[str, Any], action: str) -> dict[str, Any]:
    """``payload`` with the contract's keys; a FAIL without ``error`` gets its exit's code."""
    out = dict(payload)
    out.setdefault("status", "OK")
    out["action"] = out.get("action") or action
    out.setdefault("run_id", None)
    out["message"] = str(out.get("message") or out["status"])
    if out["status"] == "FAIL" and not out.get("error"):
        out["error"] = ERROR_BY_EXIT.get(int(out.get("exit_code") or 8), "operation")
    return out


def failure(action: str, exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, LiftgateError):
        out: dict[str, Any] = {
            "status": "FAIL",
            "action": action,
            "run_id": exc.run_id,  # set when the error ended a recorded run
            "message": exc.message,
            "error": exc.code,
            "hint": exc.hint,
        }
        if exc.evidence_path is not None:
            out["evidence_path"] = exc.evidence_path
        return out
    return {
        "status": "FAIL",
        "action": action,
        "run_id": None,
        "message": f"internal error: {type(exc).__name__}: {exc}",
        "error": "internal",
        "hint": "see the server's log (stderr)",
    }


def guarded(
    ws: Workspace, action: str, body: Callable[[Project], dict[str, Any]]
) -> dict[str, Any]:
    """Run ``body`` on a freshly opened project; every error becomes a FAIL payload.
    Everything returned passes through the project's redactor."""
    redactor: Redactor = ws.redactor
    try:
        with ws.project() as project:
            redactor = project.redactor
            payload = body(project)
    except Exception as exc:  # the boundary: every error becomes one sentence
        if not isinstance(exc, LiftgateError):
            traceback.print_exc()  # stderr: the server's log, never the protocol stream
        payload = failure(action, exc)
    clean: dict[str, Any] = redactor.data(contract(payload, action))
    return clean


# mutating tools ---------------------------------------------------------------------------
Input = FilePromoteInput | BackupInput | RestoreInput | DeployInput | PromoteInput


@dataclass(frozen=True)
class Plan:
    summary: str  # one sentence: what a person approves
    details: dict[str, Any]
    noop: dict[str, Any] | None = None  # the operation has nothing to do: this result


@dataclass(frozen=True)
class Scope:
    env: str | None
    production: bool
    auto: bool  # the env's settings say approval = "auto" (never production)


@dataclass(frozen=True)
class Mutation:
    name: str
    title: str
    description: str
    model: type[Input]
    scope: Callable[[Project, Any], Scope]
    plan: Callable[[Project, Any], Plan]
    wait_for_result: bool = False
    destructive: bool = True
    idempotent: bool = False
    open_world: bool = False

    def call(self, ws: Workspace, arguments: dict[str, Any]) -> dict[str, Any]:
        action = self.model.action
        try:
            inp = parse(self.model, arguments)
        except UsageError as exc:
            return contract(failure(action, exc), action)
        return guarded(ws, action, lambda project: self._run(ws, project, inp))

    def _run(self, ws: Workspace, project: Project, inp: Any) -> dict[str, Any]:
        action = self.model.action
        args = inp.request_args()
        if inp.approval_id is None and _changes_nothing(inp):
            result: dict[str, Any] = inp.run(project).as_dict()
            return result
        scope = self.scope(project, inp)
        approval_id = inp.approval_id
        if approval_id is None and not scope.auto:
            plan = self.plan(project, inp)
            if plan.noop is not None:
                return plan.noop
            summary = plan.summary + _unsafe_note(inp)
            record = approvals.request(
                project, self.name, args, scope.env, scope.production, summary=summary
            )
            instruction = ws.approve_instruction(record.approval_id)
            return {
                "status": "APPROVAL_REQUIRED",
                "action": action,
                "run_id": None,
                "message": f"nothing was changed: {summary} needs a person's approval; "
                f"{instruction}, then call {self.name} again with the same arguments and "
                f'"approval_id": "{record.approval_id}"',
                "approval_id": record.approval_id,
                "instruction": instruction,
                "expires_at": record.expires_at,
                "env": scope.env,
                "production": scope.production,
                "plan": {"summary": summary, **plan.details},
            }
        run_id = new_run_id()
        if approval_id is None:  # approval = "auto": recorded like any other, for the audit
            record = approvals.request(
                project,
                self.name,
                args,
                scope.env,
                scope.production,
                summary=f'{self.name} on {scope.env}: env.{scope.env} has approval = "auto"',
            )
            approval_id = record.approval_id
            approvals.approve(project, approval_id, f'auto (env.{scope.env} approval = "auto")')
        approvals.consume(
            project, approval_id, self.name, args, run_id=run_id, production=scope.production
        )
        job = ws.jobs.spawn(
            run_id=run_id,
            tool=self.name,
            cli_args=inp.argv(),
            config_path=ws.config_path,
            cwd=ws.cwd,
            approval_id=approval_id,
        )
        extra = {"approval_id": approval_id, "log_path": str(job.log_path)}
        if self.wait_for_result and ws.jobs.wait(run_id, SYNC_SECONDS):
            done = ws.jobs.state(job)["result"]
            if done is not None:
                return {**done, **extra}
            return {
                "status": "FAIL",
                "action": action,
                "run_id": run_id,
                "message": f"run {run_id} ended without a result; see {job.log_path}",
                "error": "operation",
                **extra,
            }
        return {
            "status": "STARTED",
            "action": action,
            "run_id": run_id,
            "message": f"run {run_id} started in the background; call run_show with this "
            "run_id until finished is true",
            **extra,
        }


def parse(model: type[M], arguments: dict[str, Any]) -> M:
    """``model`` from a tool's arguments (UsageError if bad). A list given as a JSON string
    (some clients send them so) is read as the list."""
    values = dict(arguments)
    for name, field in model.model_fields.items():
        key = field.alias or name
        value = values.get(key)
        if isinstance(value, str) and get_origin(field.annotation) is list:
            with contextlib.suppress(ValueError):
                parsed = json.loads(value)
                if isinstance(parsed, list):
                    values[key] = parsed
    return build(model, **values)


def _unsafe_note(inp: Any) -> str:
    names = list(getattr(inp, "unsafe_guardrails", []))
    return f", accepting weakened guardrails: {', '.join(names)}" if names else ""


def _changes_nothing(inp: Any) -> bool:
    """A dry run changes nothing — but promote's dry run with close_window ends a window."""
    return bool(getattr(inp, "dry_run", False)) and not getattr(inp, "close_window", False)


def _env_scope(project: Project, name: str) -> Scope:
    from liftgate.odoo.env import resolve_env

    settings = project.config.settings.env
    env = settings.get(name)
    if env is None and "." in name:  # one slot of a production env: ENV.blue
        env = settings.get(name.rpartition(".")[0])
    if env is None:
        resolve_env(project, name)  # raises ConfigError naming the known envs
        raise ConfigError(f"there is no environment {name!r} in {CONFIG_NAME}")
    production = env.role == "production"
    return Scope(env=name, production=production, auto=env.approval == "auto" and not production)


def _dry_details(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if k not in ("status", "action", "run_id", "dry_run")}


def _files_plan(project: Project, inp: FilePromoteInput) -> Plan:
    dry = inp.model_copy(update={"dry_run": True}).run(project).as_dict()
    if dry["status"] == "NOOP":
        return Plan(summary="", details={}, noop=dry)
    flags = [
        text
        for on, text in (
            (inp.no_backup, "without a backup"),
            (inp.force, "overwriting hand edits"),
            (inp.expect_prefix is not None, f"expecting it to start with {inp.expect_prefix!r}"),
        )
        if on
    ]
    summary = f"promote {inp.staged} onto {inp.target}" + "".join(f", {f}" for f in flags)
    return Plan(summary=summary, details=_dry_details(dry))


def _files_scope(project: Project, inp: FilePromoteInput) -> Scope:
    return Scope(env=None, production=False, auto=False)


def _backup_plan(project: Project, inp: BackupInput) -> Plan:
    from liftgate.odoo.env import resolve_env

    env = resolve_env(project, inp.env)
    summary = (
        f"back up env {env.name} ({env.role}: database {env.db} and its filestore) into a "
        "new artifact"
    )
    return Plan(
        summary=summary,
        details={
            "message": f"would {summary}; the environment itself is not changed",
            "env": env.name,
            "role": env.role,
            "db": env.db,
            "filestore": str(env.filestore),
            "artifacts_dir": str(project.config.artifacts_dir),
            "strict": inp.strict,
        },
    )


def _restore_plan(project: Project, inp: RestoreInput) -> Plan:
    from liftgate.artifacts.repository import ArtifactRepository
    from liftgate.odoo.env import resolve_env

    env = resolve_env(project, inp.env)
    manifest = ArtifactRepository(project.config.artifacts_dir).load(inp.artifact)
    neutralize = env.neutralize if inp.neutralize is None else inp.neutralize
    summary = (
        f"restore artifact {manifest.artifact_id} (env {manifest.source_env.name}, taken at "
        f"{manifest.created_at}) into env {env.name} ({env.role}: database {env.db}"
        + (", replacing the existing database" if inp.force else "")
        + (", neutralized" if neutralize else ", not neutralized")
        + ")"
    )
    return Plan(
        summary=summary,
        details={
            "message": f"would {summary}: a new database is restored and verified, then "
            "swapped in; an existing database is replaced only with force (and kept for "
            "liftgate odoo restore --rollback)",
            "artifact_id": manifest.artifact_id,
            "source_env": manifest.source_env.name,
            "created_at": manifest.created_at,
            "env": env.name,
            "role": env.role,
            "db": env.db,
            "filestore": str(env.filestore),
            "neutralize": neutralize,
            "force": inp.force,
        },
    )


def _deploy_plan(project: Project, inp: DeployInput) -> Plan:
    dry = inp.model_copy(update={"dry_run": True}).run(project).as_dict()
    plan = dry.get("plan") or {}
    commit = str(plan.get("commit") or inp.commit)
    summary = (
        f"deploy commit {commit[:12]} (requested {inp.commit}) to env {inp.env}: update "
        f"{', '.join(plan.get('update') or []) or 'no module'}, install "
        f"{', '.join(plan.get('install') or []) or 'no module'}"
    )
    return Plan(summary=summary, details=_dry_details(dry))


def _promote_plan(project: Project, inp: PromoteInput) -> Plan:
    summary = (
        f"promote {inp.staging}'s deployed commit to production env {inp.prod} "
        f"(data from {inp.data}, copy by {inp.copy_mode}"
        + (", closing the open rollback window first" if inp.close_window else "")
        + (", cutover without a pause" if inp.approve else ", pausing before the cutover")
        + ")"
    )
    if inp.close_window:  # its dry run would already end the window: describe instead
        _env_scope(project, inp.prod)
        return Plan(summary=summary, details={"message": f"would {summary}"})
    dry = inp.model_copy(update={"dry_run": True}).run(project).as_dict()
    return Plan(summary=summary, details=_dry_details(dry))


def _promote_scope(project: Project, inp: PromoteInput) -> Scope:
    _env_scope(project, inp.prod)
    return Scope(env=inp.prod, production=True, auto=False)  # always a person


_APPROVAL_TEXT = (
    " Without approval_id the call changes nothing: it returns the plan and an approval_id "
    "(status APPROVAL_REQUIRED); a person runs 'liftgate approve <approval_id>'; then call "
    "again with the SAME arguments plus approval_id. An approval is good for one call."
)
_AUTO_TEXT = ' Envs whose settings say approval = "auto" (never production) need no approval.'
_BACKGROUND_TEXT = (
    " Runs in the background: answers status STARTED with the run_id at once; poll run_show "
    "until finished is true."
)

MUTATING: tuple[Mutation, ...] = (
    Mutation(
        name="stage_promote_safe",
        title="Promote a staged file or folder (gated, backed up, reversible)",
        description="Promote a staged file or folder onto its explicit live target: paths "
        "must lie inside the configured roots, a target edited by hand is refused (drift), a "
        "verified backup is taken first, the switch is atomic, the result is verified and put "
        "back if it fails, and an evidence bundle is written. dry_run=true only plans (with a "
        "diff and, for a folder, every entry it would add, remove or change) and needs no "
        "approval. Promoting content the target already holds is a NOOP."
        + _APPROVAL_TEXT
        + " The answer is the run's result (status OK, NOOP or FAIL, run_id, evidence_path).",
        model=FilePromoteInput,
        scope=_files_scope,
        plan=_files_plan,
        wait_for_result=True,
        idempotent=True,
    ),
    Mutation(
        name="backup_odoo_environment",
        title="Back up an Odoo environment",
        description="Back up an Odoo environment — its database and filestore from one "
        "consistent snapshot — into a new verified artifact (see artifacts_list). The "
        "environment itself is not changed; each call adds an artifact. strict=true fails on "
        "a referenced attachment missing from the filestore."
        + _APPROVAL_TEXT
        + _AUTO_TEXT
        + _BACKGROUND_TEXT,
        model=BackupInput,
        scope=lambda project, inp: _env_scope(project, inp.env),
        plan=_backup_plan,
        destructive=False,
    ),
    Mutation(
        name="restore_odoo_environment",
        title="Restore an artifact into an Odoo environment",
        description="Restore a backup artifact into an Odoo environment: its checksums are "
        "verified, a new database is restored as the env's own role, checked, neutralized "
        "(mail and crons off; default: unless production), and only then swapped in with the "
        "filestore. An existing database is replaced only with force=true, and is kept for "
        "'liftgate odoo restore --rollback ENV'. Restoring the artifact the env already holds, "
        "unchanged since, is a NOOP." + _APPROVAL_TEXT + _AUTO_TEXT + _BACKGROUND_TEXT,
        model=RestoreInput,
        scope=lambda project, inp: _env_scope(project, inp.env),
        plan=_restore_plan,
        idempotent=True,
    ),
    Mutation(
        name="deploy_odoo_modules_git",
        title="Deploy a git commit of Odoo modules",
        description="Deploy one commit of the env's addons git repository: Odoo Enterprise "
        "modules are refused before anything changes; only installed modules whose files "
        "changed are updated (modules='auto'); a way back is made first (a database and "
        "filestore copy, plus a verified backup on production); the update runs through "
        "Odoo's CLI on the new release, then the release is switched, the service restarted, "
        "health and smoke checks run — any failure puts everything back. dry_run=true returns "
        "the plan (resolved commit, every module) and needs no approval."
        + _APPROVAL_TEXT
        + _AUTO_TEXT
        + _BACKGROUND_TEXT,
        model=DeployInput,
        scope=lambda project, inp: _env_scope(project, inp.env),
        plan=_deploy_plan,
        open_world=True,
    ),
    Mutation(
        name="promote_staging_to_prod",
        title="Promote staging to production (blue/green)",
        description="Promote what a staging env runs (its deployed commit) to a production "
        "env with blue/green slots: preconditions checked, staging snapshotted and blue "
        "backed up, green prepared and smoke-tested in the inactive slot, traffic cut over "
        "through the switch, the public URL watched, and switched back automatically if "
        "unstable. Production always needs a person's approval; with approve=false the run "
        "also rehearses and pauses (status PAUSED) until a person runs 'liftgate approve "
        "RUN_ID'. dry_run=true checks the preconditions and returns the plan."
        + _APPROVAL_TEXT
        + _BACKGROUND_TEXT,
        model=PromoteInput,
        scope=_promote_scope,
        plan=_promote_plan,
    ),
)


# read-only tools --------------------------------------------------------------------------
class _Query(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StatusInput(_Query):
    env: str = Field(description="The Odoo environment (a name from liftgate.toml).")


class RunsListInput(_Query):
    target: str | None = Field(
        default=None, description="Only runs on this file or folder target (a path)."
    )
    status: str | None = Field(
        default=None,
        description="Only runs with this status: running, ok, failed, awaiting_approval, "
        "refused, ...",
    )
    limit: int = Field(default=50, ge=1, le=1000, description="At most this many runs.")


class RunShowInput(_Query):
    run_id: str = Field(pattern=RUN_ID, description="The run id (YYYYMMDD-HHMMSS-xxxxxx).")


class EvidenceVerifyInput(_Query):
    run_id: str = Field(pattern=RUN_ID, description="The run whose evidence is checked.")


class ArtifactsListInput(_Query):
    pass


@dataclass(frozen=True)
class Query:
    name: str
    title: str
    description: str
    model: type[_Query]
    action: str
    body: Callable[[Workspace, Project, Any], dict[str, Any]]

    def call(self, ws: Workspace, arguments: dict[str, Any]) -> dict[str, Any]:
        try:
            inp = parse(self.model, arguments)
        except UsageError as exc:
            return contract(failure(self.action, exc), self.action)
        return guarded(ws, self.action, lambda project: self.body(ws, project, inp))


def _run_dict(run: RunRecord, *, full: bool = False) -> dict[str, Any]:
    data = run._asdict()
    if not full:
        data.pop("plan")
    return data


def _status(ws: Workspace, project: Project, inp: StatusInput) -> dict[str, Any]:
    from liftgate.odoo.status import env_status

    payload = env_status(project, inp.env)
    if "message" not in payload:
        commit = payload.get("commit")
        db = payload.get("database") or {}
        payload["message"] = (
            f"{inp.env}: "
            + (f"commit {str(commit)[:12]}" if commit else "no deploy recorded")
            + (", database reachable" if db.get("reachable") else ", database unreachable")
        )
    return payload


def _runs_list(ws: Workspace, project: Project, inp: RunsListInput) -> dict[str, Any]:
    runs = []
    if project.has_state:
        wanted = str(project.resolve(inp.target, what="target")) if inp.target else None
        runs = project.store.list_runs(target=wanted, status=inp.status, limit=inp.limit)
    return {
        "status": "OK",
        "action": "runs list",
        "run_id": None,
        "message": f"{len(runs)} runs",
        "runs": [_run_dict(r) for r in runs],
    }


def _run_show(ws: Workspace, project: Project, inp: RunShowInput) -> dict[str, Any]:
    run = project.store.get_run(inp.run_id) if project.has_state else None
    job = ws.jobs.load(inp.run_id)
    background = ws.jobs.state(job) if job is not None else None
    if run is None and background is None:
        raise UsageError(f"there is no run {inp.run_id}")
    if background is not None:
        finished = background["state"] == "exited"
    else:
        finished = run is not None and run.finished_at is not None
    result = (background or {}).get("result")
    if run is not None:
        message = run.message or run.status
    elif not finished:
        message = f"run {inp.run_id} is starting in the background"
    elif result is not None:
        message = f"the background run ended before it was recorded: {result.get('message')}"
    else:
        message = "the background run ended without a result; see its log"
    return {
        "status": "OK",
        "action": "runs show",
        "run_id": inp.run_id,
        "message": message,
        "finished": finished,
        "run": _run_dict(run, full=True) if run is not None else None,
        "steps": [s._asdict() for s in project.store.steps(inp.run_id)] if run is not None else [],
        "evidence_path": str(project.config.evidence_dir / inp.run_id) if run else None,
        "background": background,
    }


def _evidence_verify(ws: Workspace, project: Project, inp: EvidenceVerifyInput) -> dict[str, Any]:
    from liftgate.engine.evidence import verify_bundle

    folder = project.config.evidence_dir / inp.run_id
    if not folder.is_dir():
        raise UsageError(f"there is no evidence for run {inp.run_id}")
    problems = verify_bundle(folder)
    return {
        "status": "OK" if not problems else "FAIL",
        "action": "evidence verify",
        "run_id": inp.run_id,
        "message": f"evidence {folder} verifies"
        if not problems
        else f"evidence {folder} does not verify: {problems[0]}",
        "problems": problems,
        "evidence_path": str(folder),
        "exit_code": 6,
    }


def _artifacts_list(ws: Workspace, project: Project, inp: ArtifactsListInput) -> dict[str, Any]:
    from liftgate.artifacts.repository import ArtifactRepository

    repo = ArtifactRepository(project.config.artifacts_dir)
    items = [
        {
            "artifact_id": m.artifact_id,
            "created_at": m.created_at,
            "source_env": m.source_env.name,
            "role": m.source_env.role,
            "db": m.source_env.db,
            "db_bytes": m.db_dump.size,
            "filestore_count": m.filestore.count,
            "filestore_bytes": m.filestore.bytes,
            "odoo_version": m.odoo.version,
            "artifact_path": str(repo.path(m.artifact_id)),
        }
        for m in repo.list()
    ]
    return {
        "status": "OK",
        "action": "artifacts list",
        "run_id": None,
        "message": f"{len(items)} artifacts in {repo.root}",
        "artifacts": items,
    }


READ_ONLY: tuple[Query, ...] = (
    Query(
        name="status",
        title="Odoo environment status",
        description="Read-only: what an Odoo environment runs and what was last done to it — "
        "deployed commit, release, last deploy and last run, whether its database is "
        "reachable; for a production env with blue/green slots, the active slot, each slot's "
        "commit, the last promotion and the rollback window.",
        model=StatusInput,
        action="odoo status",
        body=_status,
    ),
    Query(
        name="runs_list",
        title="List runs",
        description="Read-only: the runs recorded in the ops store, newest first (run_id, "
        "kind, action, target, status, message, times), optionally filtered.",
        model=RunsListInput,
        action="runs list",
        body=_runs_list,
    ),
    Query(
        name="run_show",
        title="Show a run",
        description="Read-only: one run with its plan and step journal, and for a run this "
        "server started in the background its process (state running|exited, the final "
        "result, the log path). finished is true once it ended: poll this after a tool "
        "answered STARTED.",
        model=RunShowInput,
        action="runs show",
        body=_run_show,
    ),
    Query(
        name="evidence_verify",
        title="Verify a run's evidence",
        description="Read-only: check a run's evidence bundle against its MANIFEST.sha256: "
        "OK, or FAIL with error 'integrity' when a file changed, is missing or was added.",
        model=EvidenceVerifyInput,
        action="evidence verify",
        body=_evidence_verify,
    ),
    Query(
        name="artifacts_list",
        title="List backup artifacts",
        description="Read-only: the finished backup artifacts of Odoo environments, oldest "
        "first (artifact_id, source env, time, sizes), for restore_odoo_environment.",
        model=ArtifactsListInput,
        action="artifacts list",
        body=_artifacts_list,
    ),
)
