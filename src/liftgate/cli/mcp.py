"""``liftgate mcp``: serve liftgate's tools to AI agents over the Model Context Protocol."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from liftgate.cli.output import guarded

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    @app.command("mcp")
    def mcp_cmd(
        ctx: typer.Context,
        config: Annotated[
            Path | None,
            typer.Option(
                "--config", help="liftgate.toml to serve (default: found upward from here)."
            ),
        ] = None,
        http: Annotated[
            bool,
            typer.Option(
                "--http",
                help="Serve streamable HTTP on 127.0.0.1 (bearer token from "
                "LIFTGATE_MCP_TOKEN) instead of stdio.",
            ),
        ] = False,
        port: Annotated[int, typer.Option("--port", help="The port for --http.")] = 8765,
    ) -> None:
        """Serve the tools to an agent: stdio by default (the client starts this command).

        Changing tools need a person's 'liftgate approve <id>' first; no tool approves.
        """

        def body() -> None:
            from liftgate.mcp.server import serve

            serve(config or (ctx.obj or {}).get("config"), http=http, port=port)

        guarded("mcp", False, body)
