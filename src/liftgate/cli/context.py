"""What every command needs: the project, opened from ``--config`` or the working directory."""

from __future__ import annotations

from pathlib import Path

import typer

from liftgate.cli.output import set_redactor
from liftgate.engine.project import Project

__all__ = ["open_project"]


def open_project(ctx: typer.Context) -> Project:
    config: Path | None = (ctx.obj or {}).get("config")
    project = Project.open(config)
    set_redactor(project.redactor)
    ctx.call_on_close(project.close)
    return project
