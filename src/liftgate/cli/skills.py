"""``liftgate skills list|show|check``: the skills liftgate ships for agents."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from liftgate.cli.context import open_project
from liftgate.cli.options import JsonOpt
from liftgate.cli.output import emit, escape, guarded, out
from liftgate.errors import VerificationError

__all__ = ["register", "skills_app"]


skills_app = typer.Typer(
    help="Skills for agents (SKILL.md + registry): list, show, check.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    app.add_typer(skills_app, name="skills")


@skills_app.command("list")
def list_cmd(as_json: JsonOpt = False) -> None:
    """List the shipped skills: id, version, type and description."""

    def body() -> None:
        from liftgate.skills.catalog import list_skills

        items = list_skills()
        payload = {
            "status": "OK",
            "action": "skills list",
            "run_id": None,
            "message": f"{len(items)} skills",
            "skills": items,
        }

        def human(p: dict[str, Any]) -> None:
            for s in p["skills"]:
                out.print(f"[bold]{escape(s['id'])}[/] {s['version']} ({s['type']})")
                out.print(f"  {escape(' '.join(s['description'].split()))}")

        emit(payload, as_json, human)

    guarded("skills list", as_json, body)


@skills_app.command("show")
def show_cmd(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The skill's id.")],
    as_json: JsonOpt = False,
) -> None:
    """Print a skill's SKILL.md (JSON: frontmatter, body and registry entry)."""

    def body() -> None:
        from liftgate.skills.catalog import show_skill

        shown = show_skill(name)
        payload = {
            "status": "OK",
            "action": "skills show",
            "run_id": None,
            "message": f"skill {name} ({shown['path']})",
            **{k: v for k, v in shown.items() if k != "text"},
        }
        if as_json:
            emit(payload, as_json)
        # the file as it is: redaction would only ever mangle documentation here
        sys.stdout.write(shown["text"])
        raise typer.Exit(0)

    guarded("skills show", as_json, body)


@skills_app.command("check")
def check_cmd(
    ctx: typer.Context,
    paths: Annotated[
        list[Path] | None,
        typer.Option(
            "--path",
            metavar="DIR",
            help="Also check this skill folder, folder of skill folders (with or without a "
            "registry.yaml) or SKILL.md; repeatable.",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check the shipped skills and registry, the project's override ([skills] registry)
    and any --path: one line per violation, non-zero (5) when there is one."""

    def body() -> None:
        from liftgate.skills.check import check_skills

        project = open_project(ctx)
        report = check_skills(project.config, paths or [])
        base = project.cwd
        violations = [v.as_dict(base) for v in report.violations]
        count = len(violations)
        payload: dict[str, Any] = {
            "status": "OK" if report.ok else "FAIL",
            "action": "skills check",
            "run_id": None,
            "message": f"{len(report.checked)} files checked, no violation"
            if report.ok
            else f"{count} violation{'s' if count > 1 else ''}: {violations[0]['line']}",
            "checked": [str(p) for p in report.checked],
            "violations": violations,
        }
        if not report.ok:
            payload["error"] = "skills_invalid"
            payload["exit_code"] = VerificationError.exit_code

        def human(p: dict[str, Any]) -> None:
            if p["status"] == "OK":
                out.print(f"[green]OK[/] skills check: {escape(p['message'])}")
            for v in p["violations"]:
                out.print(escape(v["line"]))

        emit(payload, as_json, human)

    guarded("skills check", as_json, body)
