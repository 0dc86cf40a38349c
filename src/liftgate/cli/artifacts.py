"""``liftgate artifacts list|show|verify|prune``: the backups in ``Config.artifacts_dir``."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Annotated, Any

import typer

from liftgate.cli.context import open_project
from liftgate.cli.options import JsonOpt, UnsafeOpt
from liftgate.cli.output import emit, escape, guarded, out

if TYPE_CHECKING:
    from liftgate.artifacts.contract import ArtifactManifest
    from liftgate.artifacts.repository import ArtifactRepository

__all__ = ["artifacts_app", "register"]


artifacts_app = typer.Typer(
    help="Backups of Odoo environments: list, show, verify and prune.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    app.add_typer(artifacts_app, name="artifacts")


def _repository(ctx: typer.Context) -> ArtifactRepository:
    from liftgate.artifacts.repository import ArtifactRepository

    return ArtifactRepository(open_project(ctx).config.artifacts_dir)


def _summary(manifest: ArtifactManifest, repo: ArtifactRepository) -> dict[str, Any]:
    return {
        "artifact_id": manifest.artifact_id,
        "created_at": manifest.created_at,
        "source_env": manifest.source_env.name,
        "role": manifest.source_env.role,
        "db": manifest.source_env.db,
        "db_bytes": manifest.db_dump.size,
        "filestore_count": manifest.filestore.count,
        "filestore_bytes": manifest.filestore.bytes,
        "odoo_version": manifest.odoo.version,
        "artifact_path": str(repo.path(manifest.artifact_id)),
    }


@artifacts_app.command("list")
def list_artifacts(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List the finished artifacts, oldest first."""

    def body() -> None:
        repo = _repository(ctx)
        items = [_summary(m, repo) for m in repo.list()]
        payload = {
            "status": "OK",
            "action": "artifacts list",
            "run_id": None,
            "message": f"{len(items)} artifacts in {repo.root}",
            "artifacts": items,
        }

        def human(p: dict[str, Any]) -> None:
            for a in p["artifacts"]:
                out.print(
                    f"{a['artifact_id']}  {a['created_at']}  {escape(a['source_env'])} "
                    f"({a['role']}, db {escape(a['db'])})  dump {a['db_bytes']} B, "
                    f"{a['filestore_count']} files {a['filestore_bytes']} B"
                )
            out.print(escape(p["message"]))

        emit(payload, as_json, human)

    guarded("artifacts list", as_json, body)


@artifacts_app.command("show")
def show(ctx: typer.Context, artifact_id: str, as_json: JsonOpt = False) -> None:
    """Show one artifact's manifest."""

    def body() -> None:
        repo = _repository(ctx)
        manifest = repo.load(artifact_id)
        payload = {
            "status": "OK",
            "action": "artifacts show",
            "run_id": None,
            "artifact_id": artifact_id,
            "message": f"artifact {artifact_id} of {manifest.source_env.name} "
            f"taken at {manifest.created_at}",
            "artifact_path": str(repo.path(artifact_id)),
            "manifest": manifest.model_dump(mode="json"),
        }

        def human(p: dict[str, Any]) -> None:
            summary = _summary(manifest, repo)
            out.print(escape(p["message"]))
            for key, value in summary.items():
                out.print(f"  {key.replace('_', ' ')}: {escape(str(value))}")
            missing = len(manifest.filestore.missing)
            out.print(f"  tables: {len(manifest.tables)}, files missing at backup: {missing}")

        emit(payload, as_json, human)

    guarded("artifacts show", as_json, body)


@artifacts_app.command("verify")
def verify(
    ctx: typer.Context,
    artifact_id: str,
    read_data: Annotated[
        bool,
        typer.Option("--read-data", help="Also re-hash every dump file and every blob."),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Check an artifact against its manifest; non-zero (6) on any problem."""

    def body() -> None:
        repo = _repository(ctx)
        problems = repo.verify(artifact_id, read_data=read_data)
        depth = "with its data" if read_data else "without re-reading its data"
        payload = {
            "status": "FAIL" if problems else "OK",
            "action": "artifacts verify",
            "run_id": None,
            "artifact_id": artifact_id,
            "message": f"artifact {artifact_id} does not verify: {problems[0]}"
            if problems
            else f"artifact {artifact_id} verifies ({depth})",
            "problems": problems,
            "read_data": read_data,
            "artifact_path": str(repo.path(artifact_id)),
            "exit_code": 6,
        }

        def human(p: dict[str, Any]) -> None:
            colour = "red" if p["problems"] else "green"
            out.print(f"[{colour}]{p['status']}[/] artifacts verify: {escape(p['message'])}")
            for problem in p["problems"][1:]:
                out.print(f"  {escape(problem)}")

        emit(payload, as_json, human)

    guarded("artifacts verify", as_json, body)


@artifacts_app.command("prune")
def prune(
    ctx: typer.Context,
    keep_last: Annotated[int | None, typer.Option("--keep-last", min=0, metavar="N")] = None,
    keep_daily: Annotated[int | None, typer.Option("--keep-daily", min=0, metavar="N")] = None,
    keep_weekly: Annotated[int | None, typer.Option("--keep-weekly", min=0, metavar="N")] = None,
    keep_monthly: Annotated[int | None, typer.Option("--keep-monthly", min=0, metavar="N")] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would be removed; remove nothing.")
    ] = False,
    unsafe: UnsafeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Remove the artifacts the retention policy does not keep, then unreferenced blobs.

    Without --keep-* options the policy is the retention_policy_default guardrail
    (daily 7, weekly 4, monthly 3 unless the project's registry override changes it)."""

    def body() -> None:
        from liftgate.artifacts.retention import policy_for

        policy, guardrails = policy_for(
            open_project(ctx),
            keep_last=keep_last,
            keep_daily=keep_daily,
            keep_weekly=keep_weekly,
            keep_monthly=keep_monthly,
            unsafe=unsafe or (),
        )
        result = _repository(ctx).prune(policy, dry_run=dry_run)
        verb = "would remove" if dry_run else "removed"
        changed = bool(result.removed or result.blobs_removed)
        payload = {
            "status": "OK" if changed or dry_run else "NOOP",
            "action": "artifacts prune",
            "run_id": None,
            "message": f"{result.policy}: {verb} {len(result.removed)} artifacts and "
            f"{result.blobs_removed} blobs ({result.bytes_freed} bytes), "
            f"kept {len(result.kept)} artifacts",
            **dataclasses.asdict(result),
            "guardrails": guardrails,
        }

        def human(p: dict[str, Any]) -> None:
            out.print(f"{p['status']} artifacts prune: {escape(p['message'])}")
            for artifact_id, reasons in p["kept"].items():
                out.print(f"  keep   {artifact_id}  {', '.join(reasons)}")
            for artifact_id in p["removed"]:
                out.print(f"  {'would remove' if dry_run else 'remove'} {artifact_id}")

        emit(payload, as_json, human)

    guarded("artifacts prune", as_json, body)
