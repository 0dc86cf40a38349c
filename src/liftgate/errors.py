"""Every error liftgate raises on purpose.

Hierarchy::

    LiftgateError                 exit 1   base: a one-sentence message and a hint
    ├── UsageError                exit 2   bad input from the user: nothing was changed
    │   ├── ConfigError           exit 2   liftgate.toml is missing a value or has a wrong one
    │   └── PathError             exit 2   a path outside its root, in the state dir, a glob
    ├── GuardrailError            exit 3   a guardrail refused the operation: nothing changed
    │   └── DriftError            exit 3   the target was edited since liftgate last wrote it
    ├── LockedError               exit 4   another operation holds the target's lock
    ├── VerificationError         exit 5   a checksum or a verification rule failed
    ├── IntegrityError            exit 6   history, evidence or a backup does not verify
    ├── StoreError                exit 7   the ops store cannot be read or written
    └── OperationError            exit 8   a step failed (the run says what was undone)
        └── SwitchError           exit 8   the traffic switch cannot be read, checked or driven

Foreign exceptions (OSError, sqlite3.Error, psycopg.Error) are translated at the boundary
with ``raise SomeError(...) from exc``; the CLI prints ``message`` (and ``hint``), never a
traceback, and exits with ``exit_code``.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DriftError",
    "GuardrailError",
    "IntegrityError",
    "LiftgateError",
    "LockedError",
    "OperationError",
    "PathError",
    "StoreError",
    "SwitchError",
    "UsageError",
    "VerificationError",
]


class LiftgateError(Exception):
    """Base of every error liftgate raises on purpose."""

    exit_code = 1
    code = "error"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        # set when the error ends a run that was recorded: the output names its evidence
        self.run_id: str | None = None
        self.evidence_path: str | None = None

    def of_run(self, run_id: str, evidence_path: str) -> LiftgateError:
        """This error, naming the recorded run it ended (``run_id`` and ``evidence_path``
        in the command's output)."""
        self.run_id, self.evidence_path = run_id, evidence_path
        return self

    def __str__(self) -> str:
        return self.message


class UsageError(LiftgateError):
    exit_code = 2
    code = "usage"


class ConfigError(UsageError):
    code = "config"


class PathError(UsageError):
    code = "path"


class GuardrailError(LiftgateError):
    exit_code = 3
    code = "guardrail"


class DriftError(GuardrailError):
    code = "drift"


class LockedError(LiftgateError):
    exit_code = 4
    code = "locked"


class VerificationError(LiftgateError):
    exit_code = 5
    code = "verification"


class IntegrityError(LiftgateError):
    exit_code = 6
    code = "integrity"


class StoreError(LiftgateError):
    exit_code = 7
    code = "store"


class OperationError(LiftgateError):
    exit_code = 8
    code = "operation"


class SwitchError(OperationError):
    """The traffic switch (HAProxy, nginx, symlink, command) cannot be read, checked or driven,
    or its state is ambiguous (both slots or neither receive traffic)."""

    code = "switch"
