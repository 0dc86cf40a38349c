"""Typed requests: exactly the inputs of each operation, shared by the CLI and the MCP server.

One model per operation (``extra="forbid"``): the CLI command builds it from its options
and calls ``run(project)``; the MCP tool's input schema is the same model's JSON Schema
(plus ``approval_id`` for the tools that need a person's approval: the ``*Input`` models),
so the two cannot drift. ``argv()`` turns a request back into the CLI arguments that build
an equal request (the MCP server runs long operations as ``python -m liftgate ... --json``).

Bad values raise ``UsageError`` (one sentence) through ``build``; the operations check
everything else (paths, envs, module names) themselves, with their own messages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from liftgate.errors import UsageError

if TYPE_CHECKING:
    from liftgate.engine.project import Project
    from liftgate.files.result import FileResult
    from liftgate.odoo.backup import BackupResult, Progress
    from liftgate.odoo.deploy import DeployResult
    from liftgate.odoo.promote import PromoteResult
    from liftgate.odoo.restore import RestoreResult

__all__ = [
    "APPROVAL_ID_PATTERN",
    "BackupInput",
    "BackupRequest",
    "DeployInput",
    "DeployRequest",
    "FilePromoteInput",
    "FilePromoteRequest",
    "FileRollbackRequest",
    "OperationRequest",
    "PromoteInput",
    "PromoteRequest",
    "RestoreInput",
    "RestoreRequest",
    "build",
]

APPROVAL_ID_PATTERN = r"^apr-[0-9a-f]{20}$"

ModuleName = Annotated[str, Field(pattern=r"^[^,\s]+$")]

R = TypeVar("R", bound=BaseModel)


def build(model: type[R], **values: Any) -> R:
    """``model(**values)``, with a validation error turned into one-sentence UsageError."""
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise UsageError(_first_error(exc)) from None


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "request"
    more = exc.error_count() - 1
    return f"invalid {where}: {err['msg']}" + (f" (and {more} more problems)" if more else "")


class OperationRequest(BaseModel):
    """What every operation takes besides its own inputs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    action: ClassVar[str]

    unsafe_guardrails: list[str] = Field(
        default_factory=list,
        description="Guardrails (by name, e.g. backup_before_write) that the project's "
        "override registry weakens and that a person accepts weakened for this one call; "
        "recorded in the run's evidence. An override that weakens a guardrail not named here "
        "is refused. Leave empty unless a person said so.",
    )
    wait: float | None = Field(
        default=None,
        ge=0,
        description="Seconds to wait for the lock when another liftgate operation holds it; "
        "default: fail at once with error 'locked'.",
    )

    def _common_argv(self) -> list[str]:
        argv = [f"--unsafe-guardrail={name}" for name in self.unsafe_guardrails]
        if self.wait is not None:
            argv.append(f"--wait={self.wait!r}")
        return argv


# files ------------------------------------------------------------------------------------
class FilePromoteRequest(OperationRequest):
    """``liftgate promote STAGED --target TARGET``."""

    action: ClassVar[str] = "promote"

    staged: str = Field(
        description="The staged file or folder to promote: a path inside the configured roots, "
        "relative to the project folder or absolute.",
    )
    target: str = Field(
        description="The exact live path to replace (or create): inside the configured roots, "
        "no glob characters. A folder is switched whole, atomically.",
    )
    no_backup: bool = Field(
        default=False,
        description="Skip the backup. Honoured only when the project's registry override "
        "turns backup_before_write off and unsafe_guardrails names it; that promotion then "
        "has no rollback.",
    )
    expect_prefix: str | None = Field(
        default=None,
        description="Refuse unless the new content starts with this text (checked on the "
        "staged copy before the switch and on the target after it).",
    )
    force: bool = Field(
        default=False,
        description="Overwrite a target that was edited by hand since liftgate last wrote it "
        "(otherwise refused with error 'drift').",
    )
    dry_run: bool = Field(
        default=False, description="Only plan: return the plan and a diff; change nothing."
    )

    def run(self, project: Project) -> FileResult:
        from liftgate.files.api import run_request

        return run_request(self.action, project, self.model_dump())

    def argv(self) -> list[str]:
        argv = ["promote", f"--target={self.target}"]
        argv += ["--no-backup"] if self.no_backup else []
        if self.expect_prefix is not None:
            argv.append(f"--expect-prefix={self.expect_prefix}")
        argv += ["--force"] if self.force else []
        argv += ["--dry-run"] if self.dry_run else []
        return [*argv, *self._common_argv(), "--", self.staged]


class FileRollbackRequest(OperationRequest):
    """``liftgate rollback --target TARGET``."""

    action: ClassVar[str] = "rollback"

    target: str = Field(description="The live path whose most recent promotion is undone.")
    force: bool = Field(
        default=False,
        description="Roll back even though the target was edited by hand since liftgate "
        "last wrote it.",
    )
    dry_run: bool = Field(default=False, description="Only plan; change nothing.")

    def run(self, project: Project) -> FileResult:
        from liftgate.files.api import run_request

        return run_request(self.action, project, self.model_dump())

    def argv(self) -> list[str]:
        argv = ["rollback", f"--target={self.target}"]
        argv += ["--force"] if self.force else []
        argv += ["--dry-run"] if self.dry_run else []
        return [*argv, *self._common_argv()]


# odoo -------------------------------------------------------------------------------------
class BackupRequest(OperationRequest):
    """``liftgate odoo backup ENV``."""

    action: ClassVar[str] = "odoo backup"

    env: str = Field(
        description="The Odoo environment to back up (a name from liftgate.toml [env.NAME], "
        "or ENV.blue / ENV.green for one slot of a production env).",
    )
    strict: bool = Field(
        default=False,
        description="Fail when a file the database references is missing from the filestore "
        "(default: name it in the evidence and go on).",
    )

    def run(self, project: Project, *, progress: Progress | None = None) -> BackupResult:
        from liftgate.odoo.backup import backup

        return backup(
            project,
            self.env,
            strict=self.strict,
            wait=self.wait,
            progress=progress,
            unsafe=tuple(self.unsafe_guardrails),
        )

    def argv(self) -> list[str]:
        argv = ["odoo", "backup"] + (["--strict"] if self.strict else [])
        return [*argv, *self._common_argv(), "--", self.env]


class RestoreRequest(OperationRequest):
    """``liftgate odoo restore ARTIFACT --env ENV``."""

    action: ClassVar[str] = "odoo restore"

    artifact: str = Field(description="The id of the artifact to restore (see artifacts_list).")
    env: str = Field(description="The Odoo environment to restore into.")
    neutralize: bool | None = Field(
        default=None,
        description="Neutralize the restored copy (mail servers and crons off, ...). "
        "Default: the env's setting, true unless the env is production.",
    )
    force: bool = Field(
        default=False,
        description="Replace the env's existing database (it is kept as <db>_pre_<suffix> "
        "for 'liftgate odoo restore --rollback'); without it an existing database is refused.",
    )

    def run(self, project: Project) -> RestoreResult:
        from liftgate.odoo.restore import restore

        return restore(
            project,
            self.artifact,
            self.env,
            neutralize=self.neutralize,
            force=self.force,
            wait=self.wait,
            unsafe=tuple(self.unsafe_guardrails),
        )

    def argv(self) -> list[str]:
        argv = ["odoo", "restore", f"--env={self.env}"]
        if self.neutralize is not None:
            argv.append("--neutralize" if self.neutralize else "--no-neutralize")
        argv += ["--force"] if self.force else []
        return [*argv, *self._common_argv(), "--", self.artifact]


class DeployRequest(OperationRequest):
    """``liftgate odoo deploy ENV --commit REF``."""

    action: ClassVar[str] = "odoo deploy"

    env: str = Field(description="The Odoo environment to deploy to.")
    commit: str = Field(
        description="The commit to deploy: a SHA, branch or tag of the addons repository "
        "(the run records the full 40-hex SHA it resolved).",
    )
    repo: str | None = Field(
        default=None,
        description="The addons repository (URL or path); default: the env's repo setting.",
    )
    modules: str = Field(
        default="auto",
        description="Which installed modules to update: 'auto' (those whose files changed "
        "since the last deploy), 'all', or a comma-separated list of module names.",
    )
    install: list[ModuleName] = Field(
        default_factory=list,
        description="Modules to install (not installed yet), by technical name.",
    )
    dry_run: bool = Field(
        default=False,
        description="Only plan: the resolved commit and every module with what would happen "
        "to it; change nothing.",
    )

    def run(self, project: Project) -> DeployResult:
        from liftgate.odoo.deploy import deploy

        return deploy(
            project,
            self.env,
            commit=self.commit,
            repo=self.repo,
            modules=self.modules,
            install=list(self.install),
            dry_run=self.dry_run,
            wait=self.wait,
            unsafe=tuple(self.unsafe_guardrails),
        )

    def argv(self) -> list[str]:
        argv = ["odoo", "deploy", f"--commit={self.commit}", f"--modules={self.modules}"]
        if self.repo is not None:
            argv.append(f"--repo={self.repo}")
        if self.install:
            argv.append(f"--install={','.join(self.install)}")
        argv += ["--dry-run"] if self.dry_run else []
        return [*argv, *self._common_argv(), "--", self.env]


class PromoteRequest(OperationRequest):
    """``liftgate odoo promote STAGING PROD``."""

    action: ClassVar[str] = "odoo promote"

    staging: str = Field(description="The staging env whose deployed commit is promoted.")
    prod: str = Field(description="The production env (with blue/green slots) to promote to.")
    data: Literal["production", "staging"] = Field(
        default="production",
        description="The data the new slot gets: production's current data (default) or "
        "staging's (then replace_production_data must be true).",
    )
    approve: bool = Field(
        default=False,
        description="The person's approval is already given for the cutover: no rehearsal "
        "and no pause before the freeze. Without it the run rehearses and pauses as "
        "awaiting_approval until a person runs 'liftgate approve RUN_ID'.",
    )
    # ``copy`` would shadow BaseModel.copy: the attribute has another name, the input not
    copy_mode: Literal["dump", "template"] = Field(
        default="dump",
        alias="copy",
        description="How blue's data is copied: 'dump' (reads keep working) or 'template' "
        "(faster, a short full outage).",
    )
    close_window: bool = Field(
        default=False,
        description="End the open rollback window of the previous promotion first (its slot "
        "becomes the next inactive one); otherwise an open window refuses the promotion.",
    )
    replace_production_data: bool = Field(
        default=False,
        description="With data='staging': yes, replace production's data with staging's "
        "(every write made to production since staging was copied is dropped).",
    )
    dry_run: bool = Field(
        default=False, description="Only check the preconditions and return the plan."
    )

    def run(self, project: Project) -> PromoteResult:
        from liftgate.odoo.promote import promote

        return promote(
            project,
            self.staging,
            self.prod,
            data=self.data,
            approve=self.approve,
            dry_run=self.dry_run,
            replace_production_data=self.replace_production_data,
            close_window=self.close_window,
            copy=self.copy_mode,
            wait=self.wait,
            unsafe=tuple(self.unsafe_guardrails),
        )

    def argv(self) -> list[str]:
        argv = ["odoo", "promote", f"--data={self.data}", f"--copy={self.copy_mode}"]
        argv += ["--approve"] if self.approve else []
        argv += ["--close-window"] if self.close_window else []
        argv += ["--yes-replace-production-data"] if self.replace_production_data else []
        argv += ["--dry-run"] if self.dry_run else []
        return [*argv, *self._common_argv(), "--", self.staging, self.prod]


# MCP tool inputs: the request plus the approval it runs under ---------------------------
class _Approval(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    approval_id: str | None = Field(
        default=None,
        pattern=APPROVAL_ID_PATTERN,
        description="The approval this call runs under. Omit it first: the call then changes "
        "nothing and returns the plan and a new approval_id; a person approves it with "
        "'liftgate approve <approval_id>'; then call again with the SAME arguments plus "
        "approval_id. An approval is good for one call, for 24 hours.",
    )

    def request_args(self) -> dict[str, Any]:
        """The request's own arguments (JSON types, defaults filled in), without the approval."""
        return self.model_dump(mode="json", by_alias=True, exclude={"approval_id"})


class FilePromoteInput(_Approval, FilePromoteRequest):
    """Input of the MCP tool ``stage_promote_safe``."""


class BackupInput(_Approval, BackupRequest):
    """Input of the MCP tool ``backup_odoo_environment``."""


class RestoreInput(_Approval, RestoreRequest):
    """Input of the MCP tool ``restore_odoo_environment``."""


class DeployInput(_Approval, DeployRequest):
    """Input of the MCP tool ``deploy_odoo_modules_git``."""


class PromoteInput(_Approval, PromoteRequest):
    """Input of the MCP tool ``promote_staging_to_prod``."""
