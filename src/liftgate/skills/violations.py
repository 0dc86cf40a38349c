"""One violation found by ``liftgate skills check``: ``<file>: <rule>: <what>``."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

from liftgate.engine.paths import display

__all__ = ["Violation"]


class Violation(NamedTuple):
    """``file`` broke ``rule`` (a stable, short rule name); ``what`` says how, in one line."""

    file: Path
    rule: str
    what: str

    def line(self, base: Path | None = None) -> str:
        """``<file>: <rule>: <what>``; the file relative to ``base`` when it is inside it,
        else (and without ``base``) as it is."""
        where = display(self.file, base) if base is not None else str(self.file)
        return f"{where}: {self.rule}: {self.what}"

    def __str__(self) -> str:
        return self.line()

    def as_dict(self, base: Path | None = None) -> dict[str, Any]:
        return {
            "file": str(self.file),
            "rule": self.rule,
            "what": self.what,
            "line": self.line(base),
        }
