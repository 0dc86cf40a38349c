"""The result of a file command, shaped as liftgate's JSON output contract."""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

__all__ = ["FileResult"]

Status = Literal["OK", "FAIL", "NOOP"]


class FileResult(NamedTuple):
    status: Status
    action: str
    message: str
    extra: dict[str, Any]  # keys added to the JSON object (no default: a fresh dict each)
    run_id: str | None = None
    staged_path: str | None = None
    target_path: str | None = None
    backup_path: str | None = None
    evidence_path: str | None = None

    @property
    def ok(self) -> bool:
        return self.status in ("OK", "NOOP")

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "action": self.action,
            "run_id": self.run_id,
            "staged_path": self.staged_path,
            "target_path": self.target_path,
            "backup_path": self.backup_path,
            "evidence_path": self.evidence_path,
            "message": self.message,
            **self.extra,
        }
