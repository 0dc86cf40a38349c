"""The result of a file command, shaped as liftgate's JSON output contract."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["FileResult"]

Status = Literal["OK", "FAIL", "NOOP"]


@dataclass
class FileResult:
    status: Status
    action: str
    message: str
    run_id: str | None = None
    staged_path: str | None = None
    target_path: str | None = None
    backup_path: str | None = None
    evidence_path: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

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
