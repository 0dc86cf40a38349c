"""``liftgate mcp``: typed requests, persisted approvals, and the server driven end to end.

The end-to-end tests spawn ``python -m liftgate mcp`` as a real process in a temporary
project and talk to it with the official SDK's own client (stdio, and streamable HTTP with
its bearer token); approvals are given with the real ``liftgate approve`` command.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp import Client, StdioServerParameters
from mcp_types import CallToolResult
from pydantic import BaseModel
from typer.testing import CliRunner

from liftgate.cli import filecmd
from liftgate.cli.app import app
from liftgate.engine import approvals
from liftgate.engine.project import Project
from liftgate.engine.runs import os_user
from liftgate.errors import GuardrailError, UsageError
from liftgate.mcp.tools import MUTATING, READ_ONLY
from liftgate.requests import (
    BackupInput,
    BackupRequest,
    DeployInput,
    DeployRequest,
    FilePromoteInput,
    FilePromoteRequest,
    FileRollbackRequest,
    PromoteInput,
    PromoteRequest,
    RestoreInput,
    RestoreRequest,
)
from support.tree import cli_json, run_cli

TOOL_INPUTS: dict[str, tuple[type[BaseModel], type[BaseModel] | None]] = {
    "stage_promote_safe": (FilePromoteInput, FilePromoteRequest),
    "backup_odoo_environment": (BackupInput, BackupRequest),
    "restore_odoo_environment": (RestoreInput, RestoreRequest),
    "deploy_odoo_modules_git": (DeployInput, DeployRequest),
    "promote_staging_to_prod": (PromoteInput, PromoteRequest),
    "status": (READ_ONLY[0].model, None),
    "runs_list": (READ_ONLY[1].model, None),
    "run_show": (READ_ONLY[2].model, None),
    "evidence_verify": (READ_ONLY[3].model, None),
    "artifacts_list": (READ_ONLY[4].model, None),
}

# (readOnly, destructive, idempotent)
HINTS = {
    "stage_promote_safe": (False, True, True),
    "backup_odoo_environment": (False, False, False),
    "restore_odoo_environment": (False, True, True),
    "deploy_odoo_modules_git": (False, True, False),
    "promote_staging_to_prod": (False, True, False),
    **{q.name: (True, False, True) for q in READ_ONLY},
}

ENVS = """
[postgres]
dsn = "host=/nonexistent/liftgate-test port=1 user=nobody"

[env.dev]
role = "dev"
db = "devdb"
filestore = "{root}/fs/devdb"
approval = "auto"

[env.prod]
role = "production"
db = "proddb"
filestore = "{root}/fs/proddb"
"""


# typed requests ---------------------------------------------------------------------------
REQUESTS: list[BaseModel] = [
    FilePromoteRequest(staged="staged/a.md", target="docs/a.md"),
    FilePromoteRequest(
        staged="-odd name.md",
        target="docs/--x.md",
        no_backup=True,
        expect_prefix="--# Title",
        force=True,
        dry_run=True,
        wait=1.5,
        unsafe_guardrails=["drift", "roots"],
    ),
    FileRollbackRequest(target="docs/a.md", force=True, dry_run=True, wait=0.0),
    BackupRequest(env="prod", strict=True, unsafe_guardrails=["x"]),
    RestoreRequest(artifact="prod-20260101-000000-abcdef", env="staging"),
    RestoreRequest(artifact="a1", env="staging", neutralize=False, force=True, wait=3.0),
    RestoreRequest(artifact="a1", env="staging", neutralize=True),
    DeployRequest(env="staging", commit="main"),
    DeployRequest(
        env="staging",
        commit="3f2a9c1",
        repo="https://git.example.com/acme/addons.git",
        modules="shop,crm",
        install=["sale", "stock"],
        dry_run=True,
    ),
    PromoteRequest(staging="staging", prod="prod"),
    PromoteRequest.model_validate(
        {
            "staging": "staging",
            "prod": "prod",
            "data": "staging",
            "approve": True,
            "copy": "template",
            "close_window": True,
            "replace_production_data": True,
            "dry_run": True,
            "unsafe_guardrails": ["a", "b"],
        }
    ),
]


@pytest.mark.parametrize("request_", REQUESTS, ids=lambda r: type(r).__name__)
def test_cli_builds_the_same_request_from_its_argv(
    request_: Any, proj_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``argv()`` (what the MCP server runs) parses back, through the real CLI, into an equal
    request: the CLI and the models cannot drift."""
    seen: list[BaseModel] = []

    def fake_run(self: BaseModel, project: Project, **_: Any) -> Any:
        seen.append(self)
        raise SystemExit(0)

    def fake_execute(action: str, fields: dict[str, Any], project: Project) -> dict[str, Any]:
        # the file commands parse without pydantic: their fields must build the same model
        assert action == type(request_).action
        assert set(fields) == set(type(request_).model_fields)
        seen.append(type(request_).model_validate(fields))
        return {"status": "OK", "action": action, "message": "parsed"}

    monkeypatch.setattr(type(request_), "run", fake_run)
    monkeypatch.setattr(filecmd, "execute", fake_execute)
    monkeypatch.chdir(proj_dir)
    result = CliRunner().invoke(app, request_.argv())
    assert result.exit_code == 0, result.output
    assert seen == [request_]
    if type(request_).action in filecmd.ACTIONS:  # and the console script's own path
        seen.clear()
        assert filecmd.run(type(request_).action, request_.argv()[1:]) == 0
        assert seen == [request_]


def test_request_models_forbid_unknown_inputs_and_say_why_in_one_sentence(
    proj_dir: Path,
) -> None:
    with pytest.raises(Exception, match="Extra inputs are not permitted"):
        FilePromoteRequest.model_validate({"staged": "a", "target": "b", "targett": "c"})
    code, out = cli_json(["odoo", "promote", "staging", "prod", "--data", "everything"], proj_dir)
    assert code == 2 and out["error"] == "usage"
    assert out["message"].startswith("invalid data: ") and "\n" not in out["message"]
    code, out = cli_json(["promote", "staged/x", "--target", "docs/x", "--wait", "-1"], proj_dir)
    assert code == 2 and out["message"].startswith("invalid wait: ")


def test_new_run_id_takes_liftgate_run_id_once_per_process(proj_dir: Path) -> None:
    script = (
        "import os; from liftgate.engine.runs import new_run_id; "
        "print(new_run_id()); print(new_run_id()); print(os.environ.get('LIFTGATE_RUN_ID'))"
    )
    given = "20260102-030405-a1b2c3"
    env = {**os.environ, "LIFTGATE_RUN_ID": given}
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    first, second, left = out.stdout.split()
    assert first == given and second != given and left == "None"
    env["LIFTGATE_RUN_ID"] = "../../etc"
    bad = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert bad.returncode != 0 and "LIFTGATE_RUN_ID must be a run id" in bad.stderr


# approvals (the engine) -------------------------------------------------------------------
ARGS = {"staged": "staged/a.md", "target": "docs/a.md", "force": False}


def test_approval_lifecycle_same_call_once(project: Project) -> None:
    record = approvals.request(project, "stage_promote_safe", ARGS, None, False, summary="s")
    assert record.approval_id.startswith("apr-") and record.status == "pending"
    assert record.expires_at > record.created_at
    with pytest.raises(GuardrailError, match="not been approved"):
        approvals.consume(project, record.approval_id, "stage_promote_safe", ARGS)
    approved, changed = approvals.approve(project, record.approval_id, "alice")
    assert changed and approved.status == "approved" and approved.approved_by == "alice"
    again, changed = approvals.approve(project, record.approval_id, "bob")
    assert not changed and again.approved_by == "alice"
    with pytest.raises(GuardrailError, match="not for this call") as other:
        approvals.consume(
            project, record.approval_id, "stage_promote_safe", {**ARGS, "force": True}
        )
    assert other.value.code == "guardrail"
    with pytest.raises(GuardrailError, match="was given for backup_odoo_environment"):
        other_tool = approvals.request(project, "backup_odoo_environment", {"env": "x"}, "x", False)
        approvals.consume(project, other_tool.approval_id, "stage_promote_safe", ARGS)
    used = approvals.consume(
        project, record.approval_id, "stage_promote_safe", dict(reversed(ARGS.items())), run_id="r1"
    )
    assert used.status == "used" and used.run_id == "r1" and used.used_at is not None
    with pytest.raises(GuardrailError, match="already used by run r1"):
        approvals.consume(project, record.approval_id, "stage_promote_safe", ARGS)
    with pytest.raises(GuardrailError, match="already used"):
        approvals.approve(project, record.approval_id, "alice")
    with pytest.raises(UsageError, match="there is no approval"):
        approvals.consume(project, "apr-" + "0" * 20, "stage_promote_safe", ARGS)
    with pytest.raises(UsageError, match="is not an approval id"):
        approvals.approve(project, "apr-../../x", "alice")


def test_approval_for_an_env_that_became_production_is_refused(project: Project) -> None:
    args = {"env": "qa"}
    record = approvals.request(project, "backup_odoo_environment", args, "qa", False)
    approvals.approve(project, record.approval_id, "alice")
    with pytest.raises(GuardrailError, match="which is production"):
        approvals.consume(
            project, record.approval_id, "backup_odoo_environment", args, production=True
        )
    used = approvals.consume(
        project, record.approval_id, "backup_odoo_environment", args, production=False
    )
    assert used.status == "used"


def test_approval_expires(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(approvals, "APPROVAL_TTL", approvals.APPROVAL_TTL * -1)
    record = approvals.request(project, "stage_promote_safe", ARGS, None, False)
    with pytest.raises(GuardrailError, match="expired at"):
        approvals.approve(project, record.approval_id, "alice")
    assert approvals.get(project, record.approval_id).status == "expired"


def test_approval_never_stores_a_secret(project: Project, proj_dir: Path) -> None:
    secret = "Sekrit-Pa55-canary"
    args = {"env": "staging", "repo": f"https://deploy:{secret}@git.example.com/a.git"}
    record = approvals.request(project, "deploy_odoo_modules_git", args, "staging", False)
    assert secret not in json.dumps(record.args)
    assert record.args["repo"] == "https://deploy:[REDACTED]@git.example.com/a.git"
    approvals.approve(project, record.approval_id, "alice")
    project.close()
    for path in (proj_dir / ".liftgate").glob("ops.sqlite*"):
        assert secret.encode() not in path.read_bytes()


# the server, end to end ---------------------------------------------------------------
def _server(cwd: Path, args: list[str]) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable, args=["-m", "liftgate", "mcp", *args], cwd=cwd
    )


def _drive(
    cwd: Path, body: Callable[[Client], Awaitable[None]], args: tuple[str, ...] = ()
) -> None:
    async def main() -> None:
        with anyio.fail_after(50):
            async with Client(_server(cwd, list(args))) as client:
                await body(client)

    anyio.run(main)


async def _call(client: Client, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    result: CallToolResult = await client.call_tool(tool, args)
    data = result.structured_content
    assert isinstance(data, dict)
    assert json.loads(result.content[0].text) == data  # type: ignore[union-attr]
    assert result.is_error == (data["status"] == "FAIL")
    for key in ("status", "action", "run_id", "message"):
        assert key in data, data
    if data["status"] == "FAIL":
        assert data["error"], data
    return data


def _approve(cwd: Path, approval_id: str) -> dict[str, Any]:
    code, out = cli_json(["approve", approval_id], cwd)
    assert code == 0, out
    return out


@pytest.fixture
def served(proj_dir: Path) -> Path:
    (proj_dir / "docs/a.md").write_text("# live\n")
    (proj_dir / "staged/a.md").write_text("# staged\n")
    (proj_dir / "staged/b.md").write_text("# staged b\n")
    return proj_dir


def test_tools_schemas_and_annotations(served: Path) -> None:
    async def body(client: Client) -> None:
        listed = {t.name: t for t in (await client.list_tools()).tools}
        assert set(listed) == set(TOOL_INPUTS)
        assert {m.name for m in MUTATING} | {q.name for q in READ_ONLY} == set(TOOL_INPUTS)
        for name, tool in listed.items():
            model, request = TOOL_INPUTS[name]
            assert tool.input_schema == model.model_json_schema(), name
            if request is not None:  # the request's own schema, plus the approval it runs under
                schema = dict(tool.input_schema)
                props = dict(schema.pop("properties"))
                approval = props.pop("approval_id")
                assert approval["anyOf"][0]["pattern"] == r"^apr-[0-9a-f]{20}$"
                expected = request.model_json_schema()
                assert props == expected["properties"]
                assert schema["required"] == expected["required"]
            assert tool.description and len(tool.description) > 80
            for prop in tool.input_schema.get("properties", {}).values():
                assert prop.get("description"), (name, prop)
            hints = tool.annotations
            assert hints is not None
            got = (hints.read_only_hint, hints.destructive_hint, hints.idempotent_hint)
            assert got == HINTS[name], name
            assert tool.output_schema is not None
            assert tool.output_schema["required"] == ["status", "action", "run_id", "message"]

    _drive(served, body)


def test_destructive_tool_plans_then_runs_once_approved(served: Path) -> None:
    target = served / "docs/a.md"
    args = {"staged": "staged/a.md", "target": "docs/a.md"}
    state: dict[str, Any] = {}

    async def body(client: Client) -> None:
        # 1. no approval_id: the plan and an approval id; nothing changes
        first = await _call(client, "stage_promote_safe", args)
        assert first["status"] == "APPROVAL_REQUIRED" and first["run_id"] is None
        approval_id = first["approval_id"]
        assert first["instruction"] == f"a person runs: liftgate approve {approval_id}"
        assert f"liftgate approve {approval_id}" in first["message"]
        assert first["plan"]["summary"] == "promote staged/a.md onto docs/a.md"
        assert "+# staged" in first["plan"]["diff"]
        assert target.read_text() == "# live\n"
        assert (await _call(client, "runs_list", {}))["runs"] == []
        # still pending: refused, stable code, nothing changes
        pending = await _call(client, "stage_promote_safe", {**args, "approval_id": approval_id})
        assert pending["error"] == "guardrail" and "not been approved" in pending["message"]
        assert target.read_text() == "# live\n"

        # 2. a person approves with the real CLI: the OS user and the time are recorded
        approved = _approve(served, approval_id)
        assert approved["status"] == "OK" and approved["approved_by"] == os_user()
        assert approved["args"]["target"] == "docs/a.md"
        assert _approve(served, approval_id)["status"] == "NOOP"

        # 3. other arguments under that approval: refused, and the approval stays usable
        other = await _call(
            client,
            "stage_promote_safe",
            {"staged": "staged/b.md", "target": "docs/a.md", "approval_id": approval_id},
        )
        assert other["error"] == "guardrail" and "not for this call" in other["message"]
        assert target.read_text() == "# live\n"

        # 4. the same call with the approval: it runs (its run id is the one picked up front)
        done = await _call(client, "stage_promote_safe", {**args, "approval_id": approval_id})
        assert done["status"] == "OK", done
        assert target.read_text() == "# staged\n"
        run_id = done["run_id"]
        assert Path(done["log_path"]).name == f"{run_id}.log"
        for _ in range(100):
            shown = await _call(client, "run_show", {"run_id": run_id})
            if shown["finished"]:
                break
            await anyio.sleep(0.1)
        assert shown["finished"] and shown["run"]["status"] == "ok"
        assert shown["background"]["result"]["status"] == "OK"
        assert [s["name"] for s in shown["steps"]][:1] == ["stage"]
        verified = await _call(client, "evidence_verify", {"run_id": run_id})
        assert verified["status"] == "OK", verified

        # 5. used once: a second call is refused, and changes nothing
        target.write_text("# live again\n")
        reused = await _call(client, "stage_promote_safe", {**args, "approval_id": approval_id})
        assert reused["error"] == "guardrail" and "already used" in reused["message"]
        assert target.read_text() == "# live again\n"

        # bad input: FAIL with its code, no approval requested
        bad = await _call(client, "stage_promote_safe", {**args, "staged": "/etc/hostname"})
        assert bad["status"] == "FAIL" and bad["error"] == "path"
        assert "approval_id" not in bad
        odd = await _call(client, "stage_promote_safe", {**args, "approval_id": "apr-nope"})
        assert odd["error"] == "usage"
        missing = await _call(client, "run_show", {"run_id": "20200101-000000-abcdef"})
        assert missing["error"] == "usage"
        # a dry run needs no approval and changes nothing
        fresh = {"staged": "staged/b.md", "target": "docs/new.md", "dry_run": True}
        dry = await _call(client, "stage_promote_safe", fresh)
        assert dry["status"] == "OK" and dry["dry_run"] is True
        assert not (served / "docs/new.md").exists()
        # a hand edit since the promotion: even the plan refuses (drift), no approval asked
        drift = await _call(client, "stage_promote_safe", args)
        assert drift["error"] == "drift" and "approval_id" not in drift
        state["run_id"] = run_id
        state["approval_id"] = approval_id

    _drive(served, body)
    db = sqlite3.connect(served / ".liftgate/ops.sqlite")
    row = db.execute(
        "SELECT status, run_id, approved_by FROM approvals WHERE approval_id=?",
        (state["approval_id"],),
    ).fetchone()
    db.close()
    assert row == ("used", state["run_id"], os_user())


async def _until_finished(client: Client, run_id: str) -> dict[str, Any]:
    for _ in range(200):
        shown = await _call(client, "run_show", {"run_id": run_id})
        if shown["finished"]:
            return shown
        await anyio.sleep(0.1)
    raise AssertionError(f"run {run_id} did not finish: {shown}")


def test_auto_env_runs_in_the_background_and_production_waits_for_a_person(
    served: Path, tmp_path: Path
) -> None:
    """The server started elsewhere with --config (as agent clients do)."""
    config = served / "liftgate.toml"
    config.write_text(config.read_text() + ENVS.format(root=served))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    async def body(client: Client) -> None:
        # production: a person must approve, even a backup
        prod = await _call(client, "backup_odoo_environment", {"env": "prod"})
        assert prod["status"] == "APPROVAL_REQUIRED" and prod["production"] is True
        assert "back up env prod" in prod["plan"]["summary"]
        approval_id = prod["approval_id"]
        command = f"liftgate --config {config} approve {approval_id}"
        assert prod["instruction"] == f"a person runs: {command}"
        code, approved = cli_json(command.split()[1:], elsewhere)  # what the person runs
        assert code == 0 and approved["production"] is True, approved
        started = await _call(
            client, "backup_odoo_environment", {"env": "prod", "approval_id": approval_id}
        )
        assert started["status"] == "STARTED", started
        shown = await _until_finished(client, started["run_id"])
        assert shown["background"]["result"]["error"] == "store"  # no such database here
        # relative paths are the project's, wherever the server was started
        plan = await _call(
            client, "stage_promote_safe", {"staged": "staged/a.md", "target": "docs/a.md"}
        )
        assert plan["status"] == "APPROVAL_REQUIRED", plan
        restore = await _call(
            client, "restore_odoo_environment", {"artifact": "nope", "env": "prod"}
        )
        assert restore["status"] == "FAIL" and restore["error"] == "usage"
        unknown = await _call(client, "backup_odoo_environment", {"env": "nowhere"})
        assert unknown["error"] == "config"
        # approval = "auto" (not production): runs at once, in the background
        started = await _call(client, "backup_odoo_environment", {"env": "dev"})
        assert started["status"] == "STARTED", started
        shown = await _until_finished(client, started["run_id"])
        # this env's database does not exist: the child's own FAIL, with its stable code
        result = shown["background"]["result"]
        assert result["status"] == "FAIL" and result["error"] == "store", result
        assert "cannot connect to database devdb" in shown["message"]
        assert Path(shown["background"]["log_path"]).is_file()

    _drive(elsewhere, body, ("--config", str(config)))
    db = sqlite3.connect(served / ".liftgate/ops.sqlite")
    rows = db.execute("SELECT env, production, status, approved_by, tool FROM approvals").fetchall()
    db.close()
    assert sorted(rows, key=str) == [
        ("dev", 0, "used", 'auto (env.dev approval = "auto")', "backup_odoo_environment"),
        ("prod", 1, "used", os_user(), "backup_odoo_environment"),
        (None, 0, "pending", None, "stage_promote_safe"),
    ]


# HTTP -------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_http_refuses_to_start_without_a_token(served: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "LIFTGATE_MCP_TOKEN"}
    proc = subprocess.run(
        [sys.executable, "-m", "liftgate", "mcp", "--http"],
        cwd=served,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert "needs a bearer token in LIFTGATE_MCP_TOKEN" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.fixture
def http_server(served: Path) -> Iterator[tuple[str, str]]:
    token = "t0k3n-" + os.urandom(12).hex()
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "liftgate", "mcp", "--http", "--port", str(port)],
        cwd=served,
        env={**os.environ, "LIFTGATE_MCP_TOKEN": token},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert proc.poll() is None and time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp", token
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_http_needs_the_bearer_token(http_server: tuple[str, str]) -> None:
    url, token = http_server
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    headers = {"accept": "application/json, text/event-stream"}
    assert httpx.post(url, json=ping, headers=headers).status_code == 401
    wrong = {**headers, "authorization": "Bearer not-the-token"}
    assert httpx.post(url, json=ping, headers=wrong).status_code == 401

    async def main() -> None:
        import httpx2
        from mcp.client.streamable_http import streamable_http_client

        auth = {"authorization": f"Bearer {token}"}
        with anyio.fail_after(30):
            async with (
                httpx2.AsyncClient(headers=auth) as http,
                Client(streamable_http_client(url, http_client=http)) as client,
            ):
                names = {t.name for t in (await client.list_tools()).tools}
                assert names == set(TOOL_INPUTS)
                listed = await client.call_tool("runs_list", {})
                assert listed.structured_content is not None
                assert listed.structured_content["status"] == "OK"

    anyio.run(main)


def test_cli_approve_still_resumes_runs(served: Path) -> None:
    """``liftgate approve`` with a run id keeps its behaviour (no such run: one sentence)."""
    code, out = cli_json(["approve", "20200101-000000-abcdef"], served)
    assert code == 2 and out["message"] == "there is no run 20200101-000000-abcdef"
    human = run_cli(["approve", "apr-" + "1" * 20], served)
    assert human.returncode == 2 and "there is no approval" in human.stderr


def test_a_failure_that_ended_a_recorded_run_names_it() -> None:
    from liftgate.errors import IntegrityError
    from liftgate.mcp.tools import failure

    plain = failure("stage_promote_safe", IntegrityError("the copy does not match"))
    assert plain["run_id"] is None and "evidence_path" not in plain
    ended = IntegrityError("the copy does not match").of_run("20261208-000000-abcdef", "/ev/x")
    out = failure("stage_promote_safe", ended)
    assert out["run_id"] == "20261208-000000-abcdef" and out["evidence_path"] == "/ev/x"
    assert out["status"] == "FAIL" and out["error"] == "integrity"
