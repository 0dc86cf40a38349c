"""Runs: an id, an immutable plan, a journal of steps, one commit point, and evidence.

A run is recorded in the ops store (status ``running``) before it changes anything. Each
step is journaled ``started`` then ``done``; a failpoint sits before and after each one
(``<action>.<step>.before`` / ``.after``). The journal plus what the target holds tells
``liftgate recover`` whether the run had passed its commit point.

Journal entries are written to the ops store in batches, one transaction each: a durable
step (the commit point, a revert) writes everything pending plus its own ``started`` entry
before its body runs; the rest (its ``done`` included) is written by the next durable step
or with the run's end, in the transaction that records it. What a crash loses is only
entries recovery does not need: it undoes a run whose commit never started, and for a
durable step that started it decides from what the target holds (the ``done`` of a commit
or a revert only saves it that probe), and re-runs the idempotent steps after it.

The evidence files a run writes itself (``run_id.txt``, ``inputs.json``, ``plan.json``,
``guardrails.json`` at the start; the summary, ``final_status.json`` and the manifest at the
end) go straight into the run's new folder, without a temp file and rename each: a run
killed while it writes one is still ``running``, and ``resume`` rewrites a start file that
is incomplete, while ``finish`` rewrites the end files (atomically, as they exist).
"""

from __future__ import annotations

import _thread
import contextlib
import datetime as dt
import getpass
import json
import os
import re
from collections.abc import Iterator
from typing import Any

from liftgate import __version__
from liftgate.engine.evidence import EvidenceBundle
from liftgate.engine.failpoints import failpoint
from liftgate.engine.guardrails import Guardrails
from liftgate.engine.project import Project
from liftgate.errors import UsageError
from liftgate.store.base import PendingStep, RunRecord, StepRecord, utcnow

__all__ = ["Run", "new_run_id"]


RUN_ID_ENV = "LIFTGATE_RUN_ID"
RUN_ID_PATTERN = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{6}$")
_given_id_checked = False
_given_id_mutex = _thread.allocate_lock()  # threading's Lock, without importing threading


def new_run_id() -> str:
    """``YYYYMMDD-HHMMSS-xxxxxx`` (UTC time, then six random hex digits).

    The first call in a process takes ``LIFTGATE_RUN_ID`` out of the environment and, when it
    is set, returns it (after checking its format): whoever started this process (``liftgate
    mcp``) knows the run id before the run starts. Every later call makes a new id.
    """
    global _given_id_checked
    with _given_id_mutex:
        if not _given_id_checked:
            _given_id_checked = True
            given = os.environ.pop(RUN_ID_ENV, None)
            if given is not None:
                if not RUN_ID_PATTERN.fullmatch(given):
                    raise UsageError(
                        f"{RUN_ID_ENV} must be a run id like 20260101-120000-a1b2c3, "
                        f"not {given[:40]!r}"
                    )
                return given
    now = dt.datetime.now(dt.UTC)
    return f"{now:%Y%m%d-%H%M%S}-{os.urandom(3).hex()}"


def os_user() -> str:
    """The name of the user running liftgate, as ``getpass.getuser`` finds it (the login
    variables, then the password database), or the uid when there is none."""
    key = (os.getuid(), *(os.environ.get(name) for name in _LOGIN_VARIABLES))
    name = _users.get(key)
    if name is None:
        try:
            name = getpass.getuser()
        except (KeyError, OSError):
            name = str(os.getuid())
        _users[key] = name  # a run records it twice; the database is read once per process
    return name


_LOGIN_VARIABLES = ("LOGNAME", "USER", "LNAME", "USERNAME")  # what getpass.getuser reads
_users: dict[tuple[int | str | None, ...], str] = {}


_INCOMPLETE_NOTE = "interrupted while it was written; rebuilt by liftgate recover"


def _whole_json(path: os.PathLike[str] | str) -> bool:
    """Does ``path`` hold a complete JSON document (a file written in place may not)?"""
    try:
        with open(path, "rb") as fh:
            json.loads(fh.read())
    except (OSError, ValueError):
        return False
    return True


class Run:
    """One run being executed (or recovered)."""

    def __init__(self, project: Project, record: RunRecord, evidence: EvidenceBundle) -> None:
        self.project = project
        self.record = record
        self.evidence = evidence
        self._steps: list[StepRecord] | None = None
        self._pending: list[PendingStep] = []
        self.guardrails: Guardrails | None = None
        self._guardrails_written = -1  # Guardrails.recorded when guardrails.json was written

    @property
    def run_id(self) -> str:
        return self.record.run_id

    @property
    def action(self) -> str:
        return self.record.action

    @classmethod
    def start(
        cls,
        project: Project,
        *,
        run_id: str,
        kind: str,
        action: str,
        target: str,
        plan: dict[str, Any],
        inputs: dict[str, Any],
        summary_name: str = "summary.md",
        guardrails: Guardrails | None = None,
    ) -> Run:
        """Record the run (before anything changes), then open its evidence folder."""
        redact = project.redactor
        now = utcnow()
        clean_plan = redact.data(plan)  # once: for the ops store and for plan.json
        record = RunRecord(
            run_id=run_id,
            kind=kind,
            action=action,
            target=target,
            host=project.host,
            state_dir=str(project.state_dir),
            status="running",
            created_at=now,
            updated_at=now,
            plan=clean_plan,
            result={},
        )
        project.store.create_run(record)
        failpoint(f"{action}.start.recorded")
        evidence = project.evidence(run_id, summary_name)
        evidence.create()
        # written in place (the folder is new); resume() rewrites one a crash left incomplete
        evidence.write_json(
            "inputs.json",
            {
                **inputs,
                "run_id": run_id,
                "user": os_user(),
                "host": project.host,
                "tool": {"name": "liftgate", "version": __version__},
                "config": str(project.config.path) if project.config.path else None,
            },
            atomic=False,
        )
        evidence.write_redacted_json("plan.json", clean_plan, atomic=False)
        run = cls(project, record, evidence)
        run._steps = []
        run.guardrails = guardrails
        run.write_guardrails()
        return run

    @classmethod
    def resume(cls, project: Project, record: RunRecord, summary_name: str = "summary.md") -> Run:
        evidence = project.evidence(record.run_id, summary_name)
        if not evidence.dir.exists():
            evidence.create()
        # a run killed while it started may lack its first evidence files, or hold one it
        # was writing in place when it died: rebuild them
        folder = evidence.dir
        try:
            run_id_text = (folder / "run_id.txt").read_bytes()
        except FileNotFoundError:
            run_id_text = b""
        if run_id_text != (record.run_id + "\n").encode():
            evidence.write_text("run_id.txt", record.run_id + "\n")
        if not _whole_json(folder / "inputs.json"):
            evidence.write_json(
                "inputs.json",
                {
                    "run_id": record.run_id,
                    "note": "the run was interrupted before its inputs were recorded; "
                    "rebuilt by liftgate recover",
                },
            )
        if not _whole_json(folder / "plan.json"):
            evidence.write_json("plan.json", record.plan)
        if evidence.has("guardrails.json") and not _whole_json(folder / "guardrails.json"):
            evidence.write_json("guardrails.json", {"note": _INCOMPLETE_NOTE})
        return cls(project, record, evidence)

    def write_guardrails(self) -> None:
        """``guardrails.json``: written at the start (an interrupted run keeps it) and
        rewritten at the end only when outcomes were recorded in between."""
        if self.guardrails is None or self.guardrails.recorded == self._guardrails_written:
            return
        # in place the first time (the start); an existing file is replaced atomically
        self.evidence.write_json("guardrails.json", self.guardrails.as_json(), atomic=False)
        self._guardrails_written = self.guardrails.recorded

    # journal ----------------------------------------------------------------
    def journal(self) -> list[StepRecord]:
        if self._steps is None:
            self._steps = self.project.store.steps(self.run_id)
        return self._steps

    def state_of(self, name: str) -> str | None:
        """The last recorded state of step ``name`` (None if never started)."""
        state = None
        for step in self.journal():
            if step.name == name:
                state = step.state
        return state

    def detail_of(self, name: str) -> dict[str, Any]:
        detail: dict[str, Any] = {}
        for step in self.journal():
            if step.name == name and step.state == "done":
                detail = step.detail
        return detail

    def mark(
        self, name: str, state: str, detail: dict[str, Any] | None = None, *, flush: bool = False
    ) -> None:
        journal = self.journal()
        clean = self.project.redactor.data(detail) if detail else {}
        pending = PendingStep(name=name, state=state, at=utcnow(), detail=clean)
        self._pending.append(pending)
        journal.append(
            StepRecord(
                run_id=self.run_id,
                seq=len(journal) + 1,
                name=name,
                state=state,
                at=pending.at,
                detail=clean,
            )
        )
        if flush:
            self.flush()

    def flush(self) -> None:
        """Write every pending journal entry to the ops store, in one transaction."""
        if self._pending:
            self.project.store.record_steps(self.run_id, self._pending)
            self._pending = []

    @contextlib.contextmanager
    def step(self, name: str, *, durable: bool = False) -> Iterator[dict[str, Any]]:
        """Journal one step; the caller fills the yielded dict with the step's detail.

        ``durable``: the journal (this step's ``started`` included) is in the ops store
        before the body runs; its ``done`` is written with the next batch (the next
        durable step, or the run's end). A failure is written at once.
        """
        failpoint(f"{self.action}.{name}.before")
        self.mark(name, "started", flush=durable)
        detail: dict[str, Any] = {}
        try:
            yield detail
        except BaseException as exc:
            with contextlib.suppress(Exception):
                self.mark(name, "failed", {"error": str(exc)}, flush=True)
            raise
        self.mark(name, "done", detail)
        failpoint(f"{self.action}.{name}.after")

    # end ----------------------------------------------------------------------
    def finish(
        self,
        *,
        status: str,
        message: str,
        result: dict[str, Any],
        summary: str,
        extra: dict[str, Any] | None = None,
        history: dict[str, Any] | None = None,
        recovering: bool = False,
    ) -> None:
        """Write the last evidence and seal it, append ``history`` (if any) to the project's
        history, make both durable in one flush, then record the run's end in the ops store.

        ``extra`` entries go into ``final_status.json``; a key ending in ``.json`` is written
        as a file of its own instead. ``recovering``: the history line is appended only if
        an earlier attempt of this run did not already append it. Pending journal entries
        are written with the end of the run.
        """
        inline: dict[str, Any] = {}
        for name, data in (extra or {}).items():
            if name.endswith(".json"):
                self.evidence.write_json(name, data)
            else:
                inline[name] = data
        self.write_guardrails()  # again only if outcomes were recorded since the start
        # in place when new; a resumed run's earlier attempt may have left them: replaced
        self.evidence.write_text(self.evidence.summary_name, summary, atomic=False)
        self.evidence.write_json(
            "final_status.json",
            {
                "run_id": self.run_id,
                "action": self.action,
                "status": status,
                "message": message,
                "finished_at": utcnow(),
                "summary_file": self.evidence.summary_name,
                **result,
                **inline,
            },
            atomic=False,
        )
        self.evidence.seal(sync=history is None)
        if history is not None:
            with self.step("history"):
                log = self.project.history
                if recovering and log.find(run_id=self.run_id, action=history.get("action")):
                    self.evidence.flush()
                else:
                    log.append(history, with_evidence=self.evidence)
        failpoint(f"{self.action}.finish.sealed")
        # the pending journal entries and the run's end: one transaction
        pending, self._pending = self._pending, []
        try:
            self.project.store.finish_run(
                self.run_id,
                status=status,
                message=self.project.redactor.text(message),
                result=self.project.redactor.data(result),
                steps=pending,
            )
        except BaseException:
            self._pending = pending + self._pending
            raise
