"""``liftgate mcp``: liftgate's operations as MCP tools, on the official SDK's ``MCPServer``.

Transports: stdio (the default: an agent client starts ``liftgate mcp`` itself), or
streamable HTTP bound to 127.0.0.1 only (``--http``), where every request must carry
``Authorization: Bearer <LIFTGATE_MCP_TOKEN>``; without that variable the server does not
start. Each tool's input schema is its model's JSON Schema (``liftgate.requests``), its
output the CLI's JSON contract (``tools.ToolResult``), as structured content and as text.
"""

from __future__ import annotations

import hmac
import json
import os
from pathlib import Path
from typing import Any

from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase, FuncMetadata
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, ConfigDict

from liftgate import __version__
from liftgate.engine.redaction import REDACTED
from liftgate.engine.runs import RUN_ID_ENV
from liftgate.errors import UsageError
from liftgate.mcp.tools import MUTATING, READ_ONLY, Mutation, Query, ToolResult, Workspace

__all__ = ["DEFAULT_PORT", "TOKEN_ENV", "build_server", "serve", "tool_annotations"]

TOKEN_ENV = "LIFTGATE_MCP_TOKEN"  # noqa: S105 - the variable's name, not a token
DEFAULT_PORT = 8765
_MIN_TOKEN = 16

INSTRUCTIONS = """\
liftgate makes promotions safe: files, PostgreSQL databases and self-hosted Odoo
environments, each gated, backed up, switched atomically, verified, reversible, with evidence.

Tools that change something (stage_promote_safe, backup_odoo_environment,
restore_odoo_environment, deploy_odoo_modules_git, promote_staging_to_prod) need a person's
approval. Call them first without approval_id: nothing is changed, the answer is the plan
and an approval_id (status APPROVAL_REQUIRED). Show the plan to the user and ask them to run
'liftgate approve <approval_id>' in a terminal; you cannot approve anything yourself. Then
call the same tool again with the SAME arguments plus approval_id. An approval is good for
one call, for 24 hours. dry_run=true calls only plan and need no approval.

Long operations answer STARTED with a run_id at once: poll run_show until finished is true,
then check evidence_verify. Every FAIL carries a stable error code (usage, config, path,
guardrail, drift, locked, verification, integrity, store, operation, switch, internal).
"""

_OUTPUT_SCHEMA = ToolResult.model_json_schema()


def tool_annotations(spec: Mutation | Query) -> ToolAnnotations:
    """Truthful hints: read-only tools change nothing; the rest say what they may do."""
    if isinstance(spec, Query):
        return ToolAnnotations(
            title=spec.title,
            read_only_hint=True,
            destructive_hint=False,
            idempotent_hint=True,
            open_world_hint=False,
        )
    return ToolAnnotations(
        title=spec.title,
        read_only_hint=False,
        destructive_hint=spec.destructive,
        idempotent_hint=spec.idempotent,
        open_world_hint=spec.open_world,
    )


def _to_result(payload: dict[str, Any]) -> CallToolResult:
    text = json.dumps(payload, default=str)
    return CallToolResult(
        content=[TextContent(type="text", text=text)],
        structured_content=json.loads(text),
        is_error=payload.get("status") == "FAIL",
    )


class _Arguments(ArgModelBase):
    """Hands the arguments over as they came: the tool validates them with its own model,
    so bad input is answered like every failure (FAIL, error 'usage', one sentence)."""

    model_config = ConfigDict(extra="allow")

    def model_dump_one_level(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


def _tool(ws: Workspace, spec: Mutation | Query) -> Tool:
    model: type[BaseModel] = spec.model

    def call(**arguments: Any) -> CallToolResult:
        return _to_result(spec.call(ws, arguments))

    return Tool(
        fn=call,
        name=spec.name,
        title=spec.title,
        description=spec.description,
        parameters=model.model_json_schema(),  # published as is: the model's own schema
        fn_metadata=FuncMetadata(
            arg_model=_Arguments, output_schema=_OUTPUT_SCHEMA, output_model=ToolResult
        ),
        is_async=False,  # blocking work: the SDK runs it in a worker thread
        context_kwarg=None,
        annotations=tool_annotations(spec),
    )


class _StaticToken:
    """The one bearer token of ``LIFTGATE_MCP_TOKEN``, compared in constant time."""

    def __init__(self, token: str) -> None:
        self._token = token.encode()

    async def verify_token(self, token: str) -> AccessToken | None:
        if hmac.compare_digest(token.encode(), self._token):
            # the request context keeps no copy of the secret
            return AccessToken(token=REDACTED, client_id="liftgate", scopes=[])
        return None


def build_server(
    ws: Workspace, *, token: str | None = None, port: int = DEFAULT_PORT
) -> MCPServer[Any]:
    """The MCP server of ``ws``'s project; with ``token``, HTTP requests need that bearer."""
    specs: list[Mutation | Query] = [*MUTATING, *READ_ONLY]
    tools = [_tool(ws, spec) for spec in specs]
    auth: dict[str, Any] = {}
    if token is not None:
        auth = {
            "token_verifier": _StaticToken(token),
            "auth": AuthSettings(
                issuer_url=f"http://127.0.0.1:{port}",
                resource_server_url=None,
            ),
        }
    return MCPServer(
        name="liftgate",
        title="liftgate: safe promotions",
        instructions=INSTRUCTIONS,
        version=__version__,
        tools=tools,
        log_level="WARNING",
        **auth,
    )


def serve(config: Path | None, *, http: bool = False, port: int = DEFAULT_PORT) -> None:
    """Run the server until its client goes away (stdio) or it is stopped (HTTP)."""
    token = None
    if http:
        token = os.environ.get(TOKEN_ENV) or None
        if token is None:
            raise UsageError(
                f"liftgate mcp --http needs a bearer token in {TOKEN_ENV} and does not start "
                "without one",
                hint=f"set {TOKEN_ENV} to a long random secret (for example the output of "
                "'openssl rand -hex 32') and give the agent client the same one",
            )
        if len(token) < _MIN_TOKEN:
            raise UsageError(f"{TOKEN_ENV} must be at least {_MIN_TOKEN} characters long")
        if not 0 < port < 65536:
            raise UsageError(f"--port must be between 1 and 65535, not {port}")
    # runs started for the server's own calls pick their ids; none is inherited
    os.environ.pop(RUN_ID_ENV, None)
    ws = Workspace(config)
    ws.redactor.add_value(token)
    server = build_server(ws, token=token, port=port)
    if http:
        server.run("streamable-http", host="127.0.0.1", port=port)
    else:
        server.run("stdio")
