"""Executing a file plan: stage → backup → commit → verify → history → evidence.

Invariants, and the order that follows from them:

1. The live target is never touched before a verified backup exists: ``backup`` comes
   before ``commit`` and checks the backup against the planned digest.
2. Readers see the old or the new target, never a mix: the new content is fully written
   and fsynced beside the target (``stage``) and switched in by one atomic rename or
   exchange (``commit``, the commit point), then the folder is fsynced.
3. A promotion that fails post-write verification puts the previous content back before
   it returns (``revert``).
4. The evidence is sealed, then the history line is appended and made durable together
   with it (``history``) before the run reports OK and before the ops store records the
   end of the run.

Everything after the commit point is idempotent, so ``liftgate recover`` completes an
interrupted run by calling the same ``after_commit``.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from liftgate.engine.digest import content_digest, fingerprint, path_kind
from liftgate.engine.fsops import (
    copy_file_durable,
    copy_file_verified,
    copy_tree_durable,
    exchange,
    fsync_dir,
    link_or_copy_file,
    link_or_copy_tree,
    remove_path,
    rename_noreplace,
)
from liftgate.engine.guardrails import Guardrails
from liftgate.engine.project import Project
from liftgate.engine.runs import Run, os_user
from liftgate.errors import DriftError, IntegrityError, LiftgateError, OperationError
from liftgate.files.plan import FilePlan
from liftgate.files.result import FileResult
from liftgate.files.rules import check_rules, rules_for

__all__ = ["after_commit", "execute", "undo"]


def _rel(project: Project, plan: FilePlan) -> str:
    target = plan.target_path
    root = next((r for r in project.config.roots if target.is_relative_to(r)), target.parent)
    return target.relative_to(root).as_posix()


def _rule_failures(project: Project, plan: FilePlan, path: Path) -> list[str]:
    if not plan.verify_rules:
        return []
    rel = _rel(project, plan)
    if plan.kind == "file":
        return check_rules(path, rel, rules_for(rel, plan.verify_rules))
    failures: list[str] = []
    for inner in sorted(p for p in path.rglob("*") if p.is_file() and not p.is_symlink()):
        name = f"{rel}/{inner.relative_to(path).as_posix()}"
        failures += check_rules(inner, name, rules_for(name, plan.verify_rules))
    return failures


def _revert_temp(plan: FilePlan) -> Path:
    return Path(plan.temp_path + "-revert")


# steps before the commit point ------------------------------------------------------
def _stage(run: Run, project: Project, plan: FilePlan) -> None:
    with run.step("stage") as detail:
        temp = Path(plan.temp_path)
        if plan.removes_target or plan.source is None:
            detail["digest"] = None
            return
        source = Path(plan.source)
        if plan.kind == "file":
            # made durable with the backup and the journal just before the switch
            digest = copy_file_verified(source, temp, mode=plan.mode, durable=False)
        else:
            copy_tree_durable(source, temp)
            if plan.mode is not None:
                os.chmod(temp, plan.mode)
            digest = content_digest(temp) or ""
        if plan.source_digest is not None and digest != plan.source_digest:
            raise IntegrityError(
                f"the copy of {source} does not match the planned sha256 "
                "(it changed since the plan was made); nothing was changed"
            )
        if plan.uid is not None and plan.gid is not None:
            os.chown(temp, plan.uid, plan.gid, follow_symlinks=False)
        if plan.kind == "file":
            st = os.stat(temp)
            detail.update(ino=st.st_ino, dev=st.st_dev, size=st.st_size, mtime_ns=st.st_mtime_ns)
        if plan.action == "promote":
            failures = _rule_failures(project, plan, temp)
            if failures:
                raise OperationError(
                    "the staged content fails verification: " + "; ".join(failures[:5])
                )
        detail["digest"] = digest


def _backup(run: Run, project: Project, plan: FilePlan) -> None:
    with run.step("backup") as detail:
        if plan.backup_path is None:
            detail["method"] = None
            return
        backup = Path(plan.backup_path)
        backup.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        target = plan.target_path
        if plan.kind == "file":
            unchanged = fingerprint(target) == plan.before.fingerprint
            st = os.stat(target)
            method = link_or_copy_file(target, backup)
            linked = os.stat(backup)
            same_inode = (linked.st_dev, linked.st_ino) == (st.st_dev, st.st_ino)
            if (
                method == "link"
                and unchanged
                and same_inode
                and linked.st_mtime_ns == st.st_mtime_ns
            ):
                digest = plan.before.digest  # the same inode, unchanged since it was hashed
            else:
                digest = content_digest(backup)
        else:
            method = link_or_copy_tree(target, backup).method
            digest = content_digest(backup)
        # the link is made durable with the staged copy just before the switch (_commit)
        if digest != plan.before.digest:
            raise DriftError(
                f"{plan.target_display} changed while liftgate was backing it up; "
                "nothing was changed"
            )
        detail.update(method=method, digest=digest, path=str(backup))


def _commit(run: Run, plan: FilePlan) -> None:
    with run.step("commit", durable=True) as detail:
        target, temp = plan.target_path, Path(plan.temp_path)
        # Before the switch, in one flush: the staged copy (so the renamed file can never be
        # empty after a power loss; a staged folder was fsynced as it was copied), the
        # backup's entries (a folder's inside was fsynced as it was linked), this step's
        # journal entry (with the ops store) and the evidence written so far.
        staged_file = plan.kind == "file" and not plan.removes_target and plan.source is not None
        backup = Path(plan.backup_path) if plan.backup_path else None
        run.evidence.flush(
            files=[temp] if staged_file else [],
            folders=[backup.parent, backup.parent.parent] if backup is not None else [],
        )
        if plan.removes_target:
            os.rename(target, temp)
            detail["switch"] = "remove"
        elif plan.kind == "file":
            os.replace(temp, target)
            detail["switch"] = "replace"
        elif plan.before.kind == "absent":
            rename_noreplace(temp, target)
            detail["switch"] = "rename"
        else:
            exchange(temp, target)
            detail["switch"] = "exchange"
        from liftgate.engine.failpoints import failpoint

        failpoint(f"{plan.action}.commit.switched")
        fsync_dir(target.parent)


def undo(project: Project, plan: FilePlan) -> None:
    """Remove everything a run made before its commit point (the target was not touched)."""
    remove_path(Path(plan.temp_path))
    remove_path(_revert_temp(plan))
    remove_path(project.backup_dir(plan.run_id))


# after the commit point ------------------------------------------------------------
def _verify(
    project: Project, plan: FilePlan, staged: dict[str, Any], with_rules: bool
) -> list[str]:
    """Post-write verification: the target holds exactly the staged bytes (and the rules).

    For a file, ``stage`` re-read and hashed the written copy after writing it; the commit
    only renamed that inode. So when the target is still that inode, unmodified (same
    device, inode, size and mtime), its bytes are the verified ones; otherwise it is hashed.
    """
    target = plan.target_path
    expected = staged.get("digest")
    if plan.removes_target:
        return [] if path_kind(target) == "absent" else [f"{plan.target_display} still exists"]
    found: str | None = None
    if plan.kind == "file" and "ino" in staged:
        try:
            st = os.stat(target)
        except FileNotFoundError:
            return [f"{plan.target_display} is missing after the switch"]
        same = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns) == (
            staged["dev"],
            staged["ino"],
            staged["size"],
            staged["mtime_ns"],
        )
        found = expected if same else None
    if found is None:
        found = content_digest(target)
    if found != expected:
        return [f"{plan.target_display} does not hold the bytes that were staged (sha256 {found})"]
    return _rule_failures(project, plan, target) if with_rules else []


def _restore_before(project: Project, plan: FilePlan) -> bool:
    """Put the target back to what it held before the run. False if impossible."""
    target = plan.target_path
    if content_digest(target) == plan.before.digest:
        return True
    spare = _revert_temp(plan)
    remove_path(spare)
    if plan.before.kind == "absent":
        if path_kind(target) != "absent":
            os.rename(target, spare)
            fsync_dir(target.parent)
            remove_path(spare)
        return True
    if plan.backup_path is None:
        return False
    backup = Path(plan.backup_path)
    if plan.kind == "file":
        copy_file_durable(backup, spare)
        os.replace(spare, target)
    else:
        copy_tree_durable(backup, spare)
        if path_kind(target) == "absent":
            rename_noreplace(spare, target)
        else:
            exchange(spare, target)
    fsync_dir(target.parent)
    remove_path(spare)
    return content_digest(target) == plan.before.digest


def _history_entry(
    run: Run, plan: FilePlan, outcome: str, target_digest: str | None
) -> dict[str, Any]:
    backup = run.detail_of("backup")
    return {
        "action": plan.action,
        "run_id": plan.run_id,
        "target": plan.target,
        "kind": plan.kind,
        "outcome": outcome,
        "staged": plan.source if plan.action == "promote" else None,
        "source_digest": run.detail_of("stage").get("digest"),
        "before_digest": plan.before.digest,
        "target_digest": target_digest,
        "backup_path": plan.backup_path,
        "backup_digest": backup.get("digest"),
        "backup_method": backup.get("method"),
        "undoes": plan.undoes,
        "no_backup": plan.no_backup,
        "forced": plan.forced,
        "user": os_user(),
        "host": run.project.host,
    }


def _summary(plan: FilePlan, status: str, message: str, lines: list[str]) -> str:
    title = f"# liftgate {plan.action} {plan.run_id}: {status}\n\n"
    facts = [
        f"- target: `{plan.target}` ({plan.kind})",
        f"- staged: `{plan.source}`" if plan.action == "promote" else f"- undoes: {plan.undoes}",
        f"- backup: `{plan.backup_path}`" if plan.backup_path else "- backup: none",
        f"- before sha256: {plan.before.digest}",
        *lines,
    ]
    return title + message + "\n\n" + "\n".join(facts) + "\n"


def _result(
    run: Run, plan: FilePlan, status: str, message: str, extra: dict[str, Any] | None = None
) -> FileResult:
    return FileResult(
        status="OK" if status == "ok" else "FAIL",
        action=plan.action,
        message=message,
        run_id=plan.run_id,
        staged_path=plan.source if plan.action == "promote" else None,
        target_path=plan.target,
        backup_path=plan.backup_path,
        evidence_path=str(run.evidence.dir),
        extra=extra or {},
    )


def after_commit(
    run: Run, project: Project, plan: FilePlan, *, recovering: bool = False
) -> FileResult:
    """Verify, revert on failure, clean up, append history, seal evidence. Idempotent."""
    expected = None if plan.removes_target else run.detail_of("stage").get("digest")
    if run.state_of("revert") is None:
        with run.step("verify") as detail:
            failures = _verify(project, plan, run.detail_of("stage"), with_rules=not recovering)
            detail["failures"] = failures
    else:
        failures = list(run.detail_of("verify").get("failures") or ["verification failed"])
    if failures:
        return _revert(run, project, plan, failures, recovering)

    with run.step("cleanup"):
        remove_path(Path(plan.temp_path))
    entry = _history_entry(run, plan, "ok", expected)
    if plan.action == "rollback":
        verb = "removed" if plan.removes_target else "restored"
        message = f"rolled back {plan.undoes} on {plan.target_display}: {verb} the previous content"
    else:
        message = f"promoted {plan.staged_display} to {plan.target_display}"
    if recovering:
        message += " (completed by liftgate recover)"
    result = {
        "kind": plan.kind,
        "target": plan.target,
        "target_digest": expected,
        "target_fingerprint": fingerprint(plan.target_path),
        "backup_path": plan.backup_path,
        "undoes": plan.undoes,
    }
    run.finish(
        status="ok",
        message=message,
        result=result,
        summary=_summary(plan, "OK", message, [f"- after sha256: {expected}"]),
        extra={
            "verification": {
                "checks": ["sha256", *[f"rule {r.glob}" for r in plan.verify_rules]],
                "failures": [],
            },
            "history_entry": entry,
        },
        history=entry,
        recovering=recovering,
    )
    return _result(run, plan, "ok", message, {"target_digest": expected})


def _revert(
    run: Run, project: Project, plan: FilePlan, failures: list[str], recovering: bool
) -> FileResult:
    with run.step("revert", durable=True) as detail:
        restored = _restore_before(project, plan)
        detail["restored"] = restored
    remove_path(Path(plan.temp_path))
    now = content_digest(plan.target_path)
    entry = _history_entry(run, plan, "reverted" if restored else "failed", now)
    if restored:
        message = (
            f"post-write verification of {plan.target_display} failed ({failures[0]}); "
            "the previous content was put back"
        )
    else:
        message = (
            f"post-write verification of {plan.target_display} failed ({failures[0]}) and there "
            "is no backup to put back (promoted with --no-backup)"
        )
    run.finish(
        status="failed",
        message=message,
        result={"kind": plan.kind, "target": plan.target, "reverted": restored},
        summary=_summary(plan, "FAIL", message, [f"- failure: {f}" for f in failures]),
        extra={"verification": {"failures": failures}, "history_entry": entry},
        history=entry,
        recovering=recovering,
    )
    return _result(run, plan, "failed", message, {"verification_failures": failures})


def execute(
    project: Project, plan: FilePlan, inputs: dict[str, Any], guardrails: Guardrails
) -> FileResult:
    """Run ``plan`` (the caller holds the target's lock)."""
    for name, detail in (
        ("history_required", "the history line is fsynced before the run reports OK"),
        ("evidence_required", "this run's evidence is sealed by MANIFEST.sha256"),
        ("rollback_default", "a failed verification after the write puts the previous back"),
    ):
        guardrails.hold(name, detail)
    run = Run.start(
        project,
        run_id=plan.run_id,
        kind=f"files.{plan.action}",
        action=plan.action,
        target=plan.target,
        plan=plan.public(),
        inputs=inputs,
        guardrails=guardrails,
    )
    try:
        _stage(run, project, plan)
        _backup(run, project, plan)
        _commit(run, plan)
    except BaseException as exc:
        committed = run.state_of("commit") == "done" or (
            run.state_of("commit") is not None and _switched(plan, run)
        )
        if committed:
            raise
        with contextlib.suppress(OSError):
            undo(project, plan)
        message = str(exc) if isinstance(exc, LiftgateError) else f"{type(exc).__name__}: {exc}"
        run.finish(
            status="failed",
            message=message,
            result={"kind": plan.kind, "target": plan.target},
            summary=_summary(plan, "FAIL", message, ["- the target was not changed"]),
        )
        if not isinstance(exc, Exception):
            raise
        if isinstance(exc, LiftgateError):
            said = "nothing was changed" in message or "was not changed" in message
            full = message if said else message + " (the target was not changed)"
            error: LiftgateError = type(exc)(full, hint=exc.hint)
        else:
            error = OperationError(f"{plan.action} failed, the target was not changed: {message}")
        raise error.of_run(plan.run_id, str(run.evidence.dir)) from exc
    return after_commit(run, project, plan)


def _switched(plan: FilePlan, run: Run) -> bool:
    """Did the commit's switch happen? Decided from what the target holds."""
    target = plan.target_path
    if plan.removes_target:
        return path_kind(target) == "absent"
    expected = run.detail_of("stage").get("digest")
    return expected is not None and content_digest(target) == expected
