"""Plans for staged file and folder promotion and for rollback. Built before any change.

A plan is immutable: it records what the target holds now (kind, digest, fingerprint),
where the staged copy and the backup will go, which checks must pass, and what the
target must hold afterwards. ``--dry-run`` prints it; execution consumes it.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, NamedTuple

from liftgate.config import VerifyRule
from liftgate.engine.digest import PathState, content_digest, special_kind
from liftgate.engine.guardrails import Guardrails
from liftgate.engine.paths import display
from liftgate.engine.project import Project
from liftgate.engine.recovery import lock_name
from liftgate.errors import DriftError, GuardrailError, IntegrityError, PathError, UsageError
from liftgate.files.rules import check_rules, rules_for

__all__ = ["FilePlan", "Snapshot", "last_write", "plan_promotion", "plan_rollback"]

Action = Literal["promote", "rollback"]


class Snapshot(NamedTuple):
    """What a path held at planning time."""

    kind: Literal["file", "dir", "absent"]
    digest: str | None = None
    fingerprint: str | None = None
    size: int | None = None


class FilePlan(NamedTuple):
    """Everything a file or folder promotion (or rollback) will do, decided up front.

    Journaled as ``public()`` with the run (``plan.json`` in the evidence) and read back
    by ``from_public`` when ``liftgate recover`` finishes or undoes an interrupted run."""

    action: Action
    run_id: str
    kind: Literal["file", "dir"]
    target: str
    target_display: str
    source: str | None  # what is copied in: the staged path, or the backup for a rollback
    staged_display: str | None
    source_digest: str | None  # known up front for folders and rollbacks
    before: Snapshot
    temp_path: str
    backup_path: str | None
    lock: str
    undoes: str | None = None  # rollback: run id of the promotion undone
    removes_target: bool = False  # rollback of a promotion that created the target
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    verify_rules: tuple[VerifyRule, ...] = ()
    no_backup: bool = False
    forced: bool = False
    drift: dict[str, Any] | None = None

    @property
    def target_path(self) -> Path:
        return Path(self.target)

    def public(self) -> dict[str, Any]:
        """The plan as JSON-ready data (what ``from_public`` reads back)."""
        return {
            **self._asdict(),
            "before": self.before._asdict(),
            "verify_rules": [rule._asdict() for rule in self.verify_rules],
            "drift": dict(self.drift) if self.drift is not None else None,
        }

    @classmethod
    def from_public(cls, raw: Mapping[str, Any]) -> FilePlan:
        """A plan from ``public()`` data (journaled by this module); ValueError or TypeError
        when it is not one."""
        if raw.get("action") not in ("promote", "rollback") or raw.get("kind") not in (
            "file",
            "dir",
        ):
            raise ValueError("not the plan of a file promotion or rollback")
        return cls(
            **{
                **raw,
                "before": Snapshot(**raw["before"]),
                "verify_rules": tuple(VerifyRule(**rule) for rule in raw["verify_rules"]),
            }
        )


def last_write(project: Project, target: str) -> dict[str, Any] | None:
    """What liftgate last wrote to ``target`` (digest, fingerprint), from the ops store.

    Only this host's runs count: hosts sharing a PostgreSQL ops store may have files at the
    same path."""
    if not project.has_state:
        return None
    latest = project.store.list_runs(
        target=target, status="ok", host=project.host, state_dir=str(project.state_dir), limit=1
    )
    if not latest or "target_digest" not in latest[0].result:
        return None
    return {**latest[0].result, "run_id": latest[0].run_id}


def _current_state(project: Project, target: Path) -> tuple[PathState, dict[str, Any] | None]:
    last = last_write(project, str(target))
    known = None
    if last and last.get("target_fingerprint") and last.get("target_digest"):
        known = (str(last["target_fingerprint"]), str(last["target_digest"]))
    return PathState.read(target, known=known), last


def _drift(
    state: PathState, last: dict[str, Any] | None, force: bool, target_display: str
) -> dict[str, Any] | None:
    """Refuse (unless ``force``) when the target differs from what liftgate last wrote."""
    if last is None:
        return None
    expected = last.get("target_digest")
    if state.digest == expected:
        return None
    drift = {
        "expected_digest": expected,
        "found_digest": state.digest,
        "last_run": last.get("run_id"),
        "forced": force,
    }
    if not force:
        found = "is gone" if state.kind == "absent" else "was changed"
        raise DriftError(
            f"{target_display} {found} since liftgate last wrote it (run {last.get('run_id')}); "
            "refusing to overwrite the change",
            hint="look at the change, then pass --force to replace it anyway",
        )
    return drift


def _recordable(project: Project, what: str, path: str | Path | None) -> None:
    """Refuse a path the redaction rules would change.

    liftgate journals only redacted text, and ``liftgate recover`` finds an interrupted run's
    files again from that journal: a path with a part that looks secret (``token=...``, a
    ``[redaction] patterns`` match) would be journaled as ``[REDACTED]`` and its run could be
    neither undone nor completed."""
    if path is None:
        return
    text = str(path)
    if project.redactor.text(text) != text:
        raise PathError(
            f"the {what} {display(Path(text), project.cwd)} contains text that liftgate's "
            "redaction rules match, so its run could not be journaled and recovered exactly",
            hint="rename it, or narrow [redaction] patterns in liftgate.toml",
        )


# longest file name (bytes) where the folder's file system does not say (``pathconf``)
_NAME_MAX = 255
# what execution may append to the temporary name (``execute._revert_temp``)
_TEMP_SUFFIX_ROOM = len("-revert")


def _temp_path(target: Path, run_id: str) -> str:
    """Where a run writes the new content beside ``target`` before the switch:
    ``.NAME.liftgate-RUN``. A name too long for that (file names end at 255 bytes) is cut
    and made unique again by a digest of the whole name: ``.NA~<12 hex>.liftgate-RUN``."""
    tail = f".liftgate-{run_id}"
    try:
        name_max = os.pathconf(target.parent, "PC_NAME_MAX")
    except (OSError, ValueError):
        name_max = _NAME_MAX
    room = min(name_max, _NAME_MAX) - 1 - len(tail) - _TEMP_SUFFIX_ROOM  # 1: the leading dot
    name = target.name
    if len(os.fsencode(name)) > room:
        digest = hashlib.sha256(os.fsencode(name)).hexdigest()[:12]
        keep = name
        while len(os.fsencode(keep)) > room - 1 - len(digest):
            keep = keep[:-1]
        name = f"{keep}~{digest}"
    return str(target.with_name(f".{name}{tail}"))


def _recordable_plan(project: Project, plan: FilePlan) -> FilePlan:
    """The paths recovery works on must be journaled exactly: the target (checked first,
    by the caller), the temporary copy and the backup. The staged path need not be: recovery
    never reads it again, so a staged name that looks secret is journaled redacted."""
    _recordable(project, "temporary copy", plan.temp_path)
    _recordable(project, "backup", plan.backup_path)
    return plan


def _owner(st: os.stat_result) -> tuple[int | None, int | None]:
    if os.geteuid() == 0:
        return st.st_uid, st.st_gid
    return None, None


def plan_promotion(
    project: Project,
    *,
    run_id: str,
    staged: Path,
    target: Path,
    no_backup: bool,
    expect_prefix: str | None,
    force: bool,
    guardrails: Guardrails,
) -> FilePlan | None:
    """Plan promoting ``staged`` onto ``target`` (both resolved and checked by the caller).

    Returns None when the target already holds exactly the staged content (NOOP).
    """
    if expect_prefix == "":
        raise UsageError("--expect-prefix must not be empty (leave it out to check no prefix)")
    if staged == target:
        raise PathError("the staged path and the target are the same file")
    _recordable(project, "target", target)
    if staged.is_relative_to(target) or target.is_relative_to(staged):
        raise PathError("the staged path and the target must not contain each other")
    try:
        st_staged = os.stat(staged)
    except FileNotFoundError:
        raise PathError(f"the staged path {display(staged, project.cwd)} does not exist") from None
    if not (stat.S_ISREG(st_staged.st_mode) or stat.S_ISDIR(st_staged.st_mode)):
        raise PathError(f"the staged path {display(staged, project.cwd)} is not a file or folder")
    kind: Literal["file", "dir"] = "dir" if stat.S_ISDIR(st_staged.st_mode) else "file"
    unreadable = _unreadable(staged, kind)
    if unreadable is not None:
        raise PathError(f"the staged path {display(unreadable, project.cwd)} is not readable")
    target_display = display(target, project.cwd)
    if not target.parent.is_dir():
        raise PathError(f"the folder of the target {target_display} does not exist")
    if no_backup:
        guardrails.check(
            "backup_before_write",
            False,
            f"--no-backup asks to replace {target_display} without a way back",
            hint="turn backup_before_write off for stage-promote-safe in the project's registry "
            "override ([skills] registry) and pass --unsafe-guardrail backup_before_write",
        )
    else:
        guardrails.record("backup_before_write", "enforced", "the target is backed up first")

    _refuse_special_target(target, target_display)
    state, last = _current_state(project, target)
    if state.kind != "absent" and state.kind != kind:
        raise PathError(
            f"the target {target_display} is a {'folder' if state.kind == 'dir' else 'file'} "
            f"and the staged path is a {'folder' if kind == 'dir' else 'file'}"
        )
    drift = _drift(state, last, force, target_display)

    root = next(r for r in project.config.roots if target.is_relative_to(r))
    rel = target.relative_to(root).as_posix()
    rules: list[VerifyRule] = list(project.config.files.verify)
    if expect_prefix is not None:
        rules.append(VerifyRule(glob="*", starts_with=expect_prefix))
    failures = _check_staged_rules(staged, kind, rel, rules)
    guardrails.check(
        "verify_after_write",
        not failures,
        "the staged content fails verification, nothing was changed: " + "; ".join(failures[:5])
        if failures
        else f"{len(rules)} rule(s) hold on the staged content and are checked after the write",
    )
    if not guardrails.enabled("verify_after_write"):
        rules = []  # turned off (acknowledged): neither checked now nor after the write

    source_digest = None
    if kind == "dir":
        source_digest = content_digest(staged)
        if source_digest == state.digest:
            return None
    elif (
        state.kind == "file"
        and os.stat(target).st_size == st_staged.st_size
        and _same_ends(staged, target, st_staged.st_size)
        and content_digest(staged) == state.digest
    ):
        return None

    if state.kind == "absent":
        mode = stat.S_IMODE(st_staged.st_mode)
        uid, gid = _owner(st_staged)
    else:
        st_target = os.stat(target)
        mode = stat.S_IMODE(st_target.st_mode)
        uid, gid = _owner(st_target)
    backup = None if (no_backup or state.kind == "absent") else project.backup_dir(run_id)
    plan = FilePlan(
        action="promote",
        run_id=run_id,
        kind=kind,
        target=str(target),
        target_display=target_display,
        source=str(staged),
        staged_display=display(staged, project.cwd),
        source_digest=source_digest,
        before=Snapshot(
            kind=state.kind,
            digest=state.digest,
            fingerprint=state.fingerprint,
            size=os.stat(target).st_size if state.kind == "file" else None,
        ),
        temp_path=_temp_path(target, run_id),
        backup_path=str(backup) if backup else None,
        mode=mode,
        uid=uid,
        gid=gid,
        verify_rules=tuple(rules),
        no_backup=no_backup,
        forced=force,
        drift=drift,
        lock=lock_name(str(target)),
    )
    return _recordable_plan(project, plan)


def _refuse_special_target(target: Path, target_display: str) -> None:
    """A fifo, socket or device as the target: one sentence, before anything reads it."""
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        return
    special = special_kind(mode)
    if special is not None:
        raise PathError(
            f"the target {target_display} is a {special}; liftgate promotes onto regular "
            "files and folders only"
        )


def _same_ends(a: Path, b: Path, size: int, span: int = 1 << 16) -> bool:
    """Cheap test before hashing for a NOOP: do the first and last bytes agree?"""
    with open(a, "rb") as fa, open(b, "rb") as fb:
        if fa.read(span) != fb.read(span):
            return False
        if size > span:
            fa.seek(max(0, size - span))
            fb.seek(max(0, size - span))
            return fa.read(span) == fb.read(span)
    return True


def _unreadable(staged: Path, kind: str) -> Path | None:
    """The first staged file or folder that cannot be opened for reading, if any."""
    todo = [staged]
    while todo:
        path = todo.pop()
        try:
            if kind == "file":
                os.close(os.open(path, os.O_RDONLY))
                return None
            with os.scandir(path) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        todo.append(Path(entry.path))
                    elif entry.is_file(follow_symlinks=False):
                        os.close(os.open(entry.path, os.O_RDONLY))
                    elif not entry.is_symlink():
                        raise PathError(f"{entry.path} is not a regular file, folder or symlink")
                    else:
                        _check_link(staged, Path(entry.path))
        except PermissionError as exc:
            return Path(exc.filename) if exc.filename else path
    return None


def _check_link(staged: Path, link: Path) -> None:
    """A symlink inside a staged folder must stay inside that folder."""
    dest = os.readlink(link)
    resolved = (link.parent / dest).resolve()
    if os.path.isabs(dest) or not resolved.is_relative_to(staged):
        raise PathError(f"the staged symlink {link} points outside the staged folder ({dest})")


def _check_staged_rules(staged: Path, kind: str, rel: str, rules: list[VerifyRule]) -> list[str]:
    if not rules:
        return []
    if kind == "file":
        return check_rules(staged, rel, rules_for(rel, rules))
    failures: list[str] = []
    for path in sorted(p for p in staged.rglob("*") if p.is_file() and not p.is_symlink()):
        inner = f"{rel}/{path.relative_to(staged).as_posix()}"
        failures += check_rules(path, inner, rules_for(inner, rules))
    return failures


def promotions_in_force(project: Project, target: str) -> list[dict[str, Any]]:
    """Promotions of ``target`` not yet undone, oldest first (from the verified history)."""
    stack: list[dict[str, Any]] = []
    for entry in project.history.find(target=target):
        if entry.get("outcome") != "ok":
            continue
        if entry.get("action") == "promote":
            stack.append(entry)
        elif entry.get("action") == "rollback":
            stack = [e for e in stack if e.get("run_id") != entry.get("undoes")]
    return stack


def plan_rollback(project: Project, *, run_id: str, target: Path, force: bool) -> FilePlan:
    """Plan undoing the most recent promotion of ``target`` that is still in force."""
    target_display = display(target, project.cwd)
    _recordable(project, "target", target)
    if not project.has_state:
        raise UsageError(f"there is no promotion of {target_display} left to roll back")
    report = project.history.verify()
    if not report.ok:
        raise IntegrityError(
            "the history does not verify, so no backup can be trusted to roll back: "
            + report.problems[0],
            hint="run liftgate history verify",
        )
    stack = promotions_in_force(project, str(target))
    if not stack:
        raise UsageError(f"there is no promotion of {target_display} left to roll back")
    promo = stack[-1]
    if not promo.get("backup_path") and promo.get("before_digest") is not None:
        raise GuardrailError(
            f"promotion {promo['run_id']} of {target_display} was made with --no-backup; "
            "it cannot be rolled back"
        )
    kind: Literal["file", "dir"] = promo["kind"]
    _refuse_special_target(target, target_display)
    state, last = _current_state(project, target)
    drift = _drift(state, last, force, target_display)
    removes = promo.get("before_digest") is None
    source: str | None = None
    if not removes:
        backup = Path(promo["backup_path"])
        if not backup.exists():
            raise IntegrityError(f"the backup {backup} of run {promo['run_id']} is missing")
        found = content_digest(backup)
        if found != promo["before_digest"]:
            raise IntegrityError(
                f"the backup of run {promo['run_id']} does not match its recorded sha256; "
                "refusing to restore it"
            )
        source = str(backup)
    mode = uid = gid = None
    if source is not None:
        st_src = os.stat(source)
        mode = stat.S_IMODE(st_src.st_mode)
        uid, gid = _owner(st_src)
    backup_path = None
    if state.kind != "absent":
        backup_path = str(project.backup_dir(run_id))
    plan = FilePlan(
        action="rollback",
        run_id=run_id,
        kind=kind,
        target=str(target),
        target_display=target_display,
        source=source,
        staged_display=None,
        source_digest=promo.get("before_digest"),
        before=Snapshot(kind=state.kind, digest=state.digest, fingerprint=state.fingerprint),
        temp_path=_temp_path(target, run_id),
        backup_path=backup_path,
        undoes=promo["run_id"],
        removes_target=removes,
        mode=mode,
        uid=uid,
        gid=gid,
        forced=force,
        drift=drift,
        lock=lock_name(str(target)),
    )
    return _recordable_plan(project, plan)
