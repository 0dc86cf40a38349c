"""Approvals: a person's go-ahead for one exact call that an agent asked to make.

An agent (through ``liftgate mcp``) calls a tool that changes something without an
approval: liftgate changes nothing, ``request`` records a ``pending`` approval of that exact
call — the tool and its canonical arguments — and the agent is told "a person runs:
liftgate approve <id>". The person's ``liftgate approve <id>`` (``approve``) records who
(the OS user) and when. The agent calls again with the same arguments and the approval id:
``consume`` checks that it is the same call (tool and sha256 of the canonical arguments),
approved, not used and not expired, and marks it ``used`` by the run — once: the store's
compare-and-set lets exactly one of two concurrent callers through.

Approvals live in the ops store (table ``approvals``), never in a server's memory, so they
survive restarts and every host sharing the store sees them. The arguments are redacted
before they are hashed and stored: no secret is ever written (a call that differs from the
approved one only in a secret value is the same call). Statuses:
``pending`` → ``approved`` → ``used``; ``pending``/``approved`` → ``expired`` after
``APPROVAL_TTL``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import secrets
from typing import Any

from liftgate.engine.project import Project
from liftgate.errors import GuardrailError, UsageError
from liftgate.store.base import ApprovalRecord, utcnow

__all__ = [
    "APPROVAL_TTL",
    "approve",
    "canonical_args",
    "consume",
    "get",
    "is_approval_id",
    "new_approval_id",
    "request",
]

APPROVAL_TTL = dt.timedelta(hours=24)
_ID = re.compile(r"^apr-[0-9a-f]{20}$")


def is_approval_id(text: str) -> bool:
    """True for anything that claims to be an approval id (``apr-...``), valid or not."""
    return text.startswith("apr-")


def new_approval_id() -> str:
    return f"apr-{secrets.token_hex(10)}"


def _check_id(approval_id: str) -> str:
    if not _ID.fullmatch(approval_id):
        raise UsageError(f"{approval_id[:60]!r} is not an approval id (apr- and 20 hex digits)")
    return approval_id


def _stamp(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_args(project: Project, args: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The redacted arguments and the sha256 of their canonical JSON (sorted keys, compact)."""
    clean: dict[str, Any] = project.redactor.data(args)
    text = json.dumps(clean, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return clean, hashlib.sha256(text.encode()).hexdigest()


def request(
    project: Project,
    tool: str,
    args: dict[str, Any],
    env: str | None,
    production: bool,
    *,
    summary: str = "",
) -> ApprovalRecord:
    """Record a ``pending`` approval of ``tool`` called with ``args``; nothing else changes."""
    clean, digest = canonical_args(project, args)
    now = dt.datetime.now(dt.UTC)
    record = ApprovalRecord(
        approval_id=new_approval_id(),
        tool=tool,
        args=clean,
        args_sha256=digest,
        env=env,
        production=production,
        host=project.host,
        summary=project.redactor.text(summary),
        status="pending",
        created_at=_stamp(now),
        expires_at=_stamp(now + APPROVAL_TTL),
    )
    project.store.create_approval(record)
    return record


def get(project: Project, approval_id: str) -> ApprovalRecord:
    """The approval ``approval_id`` (expired first if its time is up); UsageError if unknown."""
    _check_id(approval_id)
    project.store.expire_approvals(utcnow())
    record = project.store.get_approval(approval_id)
    if record is None:
        raise UsageError(f"there is no approval {approval_id}")
    return record


def approve(project: Project, approval_id: str, user: str) -> tuple[ApprovalRecord, bool]:
    """A person approves ``approval_id``: ``(record, True)``, or ``(record, False)`` when it
    was approved already. Refused (GuardrailError) once used or expired."""
    record = get(project, approval_id)
    if record.status == "pending" and project.store.approve(approval_id, user=user, at=utcnow()):
        return get(project, approval_id), True
    record = get(project, approval_id)
    if record.status == "approved":
        return record, False
    raise _not_usable(record)


def consume(
    project: Project,
    approval_id: str,
    tool: str,
    args: dict[str, Any],
    *,
    run_id: str | None = None,
    production: bool | None = None,
) -> ApprovalRecord:
    """Use ``approval_id`` for this call: the same tool and arguments it was given for,
    approved, unused, unexpired, on this host (and, when ``production`` is given, for an env
    that was production then exactly when it is now). Marks it ``used`` (by ``run_id``) or
    raises."""
    record = get(project, approval_id)
    _, digest = canonical_args(project, args)
    if record.tool != tool or record.args_sha256 != digest:
        what = f"a {record.tool} call with other arguments" if record.tool == tool else record.tool
        raise GuardrailError(
            f"approval {approval_id} was given for {what}, not for this call; an approval "
            "covers exactly the call it was requested for",
            hint="call the tool again with the approved arguments, or without approval_id "
            "to request an approval for these",
        )
    if production is not None and record.production != production:
        now = "is production" if production else "is no longer production"
        raise GuardrailError(
            f"approval {approval_id} was given for env {record.env}, which {now}; "
            "request a new approval",
        )
    if record.host != project.host:
        raise GuardrailError(
            f"approval {approval_id} was requested on host {record.host}, not on {project.host}"
        )
    if record.status == "approved" and project.store.consume_approval(
        approval_id, tool=tool, args_sha256=digest, run_id=run_id, at=utcnow()
    ):
        return get(project, approval_id)
    raise _not_usable(get(project, approval_id))


def _not_usable(record: ApprovalRecord) -> GuardrailError:
    aid = record.approval_id
    if record.status == "pending":
        return GuardrailError(
            f"approval {aid} has not been approved by a person yet",
            hint=f"a person runs: liftgate approve {aid}",
        )
    if record.status == "used":
        return GuardrailError(
            f"approval {aid} was already used"
            + (f" by run {record.run_id}" if record.run_id else "")
            + f" at {record.used_at}; an approval is good for one call",
            hint="call the tool again without approval_id to request a new approval",
        )
    if record.status == "expired":
        return GuardrailError(
            f"approval {aid} expired at {record.expires_at}",
            hint="call the tool again without approval_id to request a new approval",
        )
    return GuardrailError(f"approval {aid} is {record.status}")
