"""A project: its configuration plus the state liftgate keeps for it (ops store, history)."""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path

from liftgate.config import Config, load_config
from liftgate.engine.durability import Durability
from liftgate.engine.evidence import EvidenceBundle
from liftgate.engine.history import History
from liftgate.engine.paths import resolve_user_path
from liftgate.engine.redaction import Redactor
from liftgate.store.base import OpsStore

__all__ = ["Project"]


class Project:
    """Opened once per command; the library API and the CLI both start here."""

    def __init__(self, config: Config, *, cwd: Path | None = None) -> None:
        self.config = config
        self.cwd = (cwd or Path.cwd()).resolve()
        self.host = os.uname().nodename  # what gethostname(2) returns, without the socket module
        self.redactor = Redactor(config.settings.redaction.patterns)
        if config.ops_dsn:
            self.redactor.add_value(_dsn_password(config.ops_dsn))

    @classmethod
    def open(cls, config_path: Path | None = None, *, cwd: Path | None = None) -> Project:
        return cls(load_config(config_path, cwd=cwd), cwd=cwd)

    @property
    def state_dir(self) -> Path:
        return self.config.state_dir

    def ensure_state_dir(self) -> None:
        made: list[Path] = []
        for folder in (self.state_dir, self.state_dir / "backups", self.config.evidence_dir):
            if not folder.is_dir():
                folder.mkdir(parents=True, exist_ok=True, mode=0o700)
                made.append(folder)
        if made and self.durability.per_file:  # syncfs mode: the run's first flush covers them
            self.durability.flush(folders=[folder.parent for folder in made])

    @property
    def has_state(self) -> bool:
        """True once liftgate has recorded anything for this project (or shares a store)."""
        return bool(self.config.ops_dsn) or (self.state_dir / "ops.sqlite").exists()

    @cached_property
    def store(self) -> OpsStore:
        self.ensure_state_dir()
        if self.config.ops_dsn:
            from liftgate.store.postgres import PostgresStore

            return PostgresStore(self.config.ops_dsn)
        from liftgate.store.sqlite import SqliteStore

        return SqliteStore(
            self.state_dir / "ops.sqlite",
            self.state_dir / "locks",
            sync_commits=self.durability.per_file,
        )

    @cached_property
    def durability(self) -> Durability:
        """How this project's writes are flushed (``[durability] flush``)."""
        return Durability(
            self.config.settings.durability.flush,
            None if self.config.ops_dsn else self.state_dir,
        )

    @cached_property
    def history(self) -> History:
        return History(self.state_dir / "history.jsonl", self.store, self.redactor)

    def evidence(self, run_id: str, summary_name: str = "summary.md") -> EvidenceBundle:
        return EvidenceBundle(
            self.config.evidence_dir, run_id, self.redactor, self.durability, summary_name
        )

    def backup_dir(self, run_id: str) -> Path:
        return self.state_dir / "backups" / run_id

    def resolve(self, raw: str, *, what: str) -> Path:
        """Resolve a user path inside the roots and outside the state and evidence folders."""
        return resolve_user_path(
            raw,
            what=what,
            roots=self.config.roots,
            forbidden=(self.state_dir, self.config.evidence_dir, self.config.artifacts_dir),
            cwd=self.cwd,
        )

    def close(self) -> None:
        if "store" in self.__dict__:
            self.store.close()
            del self.__dict__["store"]
        self.__dict__.pop("history", None)


def _dsn_password(dsn: str) -> str | None:
    try:
        from psycopg.conninfo import conninfo_to_dict

        value = conninfo_to_dict(dsn).get("password")
    except Exception:  # a DSN psycopg cannot parse has no password we could find
        return None
    return str(value) if value else os.environ.get("PGPASSWORD")
