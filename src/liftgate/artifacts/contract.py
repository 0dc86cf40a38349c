"""Artifact contract v1: the one description of a backup that backup and restore share.

The typed model below is the contract; ``artifact.schema.json`` beside this file is its JSON
Schema (``tests/test_artifact_contract.py`` checks that the shipped file matches the model).
An artifact is a folder ``<artifacts_dir>/<artifact_id>/`` holding:

* ``manifest.json`` — this model, written last (atomically), so a folder without one is an
  unfinished backup; ``manifest.json.sha256`` seals it (a changed value is caught);
* ``db/`` — the database, as a ``pg_dump --format=directory`` dump (``db_dump.files`` lists
  every file with its size and sha256);
* ``filestore.jsonl`` — one ``{"fname", "sha1", "size"}`` object per line, sorted by
  ``fname``: the attachments the dumped database references; their bytes are blobs in the
  shared store ``<artifacts_dir>/blobs/<sha1[:2]>/<sha1>``.

``<artifacts_dir>/.lock`` is held shared by backups and exclusively by ``prune``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "FORMAT",
    "SCHEMA_PATH",
    "ArtifactManifest",
    "DbDump",
    "DbState",
    "DumpFile",
    "FilestoreInfo",
    "OdooInfo",
    "SourceEnv",
    "ToolInfo",
    "load_manifest",
]

FORMAT = "liftgate.artifact/v1"
SCHEMA_PATH = Path(__file__).with_name("artifact.schema.json")

_SHA256 = r"^[0-9a-f]{64}$"
_RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceEnv(_Model):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
    role: Literal["production", "staging", "dev"]
    db: str = Field(min_length=1, max_length=63)


class DumpFile(_Model):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    size: int = Field(ge=0)
    sha256: str = Field(pattern=_SHA256)


class DbState(_Model):
    """What the dumped snapshot was, so the next backup can prove nothing changed since."""

    xid_snapshot: str = Field(
        pattern=r"^\d+:\d+:(\d+(,\d+)*)?$",
        description="txid_current_snapshot() of the dump's snapshot",
    )
    schema_digest: str
    database_oid: int
    reused_from: str | None = Field(
        default=None, description="artifact whose identical dump files this one links"
    )


class DbDump(_Model):
    format: Literal["directory"]
    path: Literal["db"]
    size: int = Field(ge=0)
    sha256: str = Field(pattern=_SHA256, description="sha256 of the sorted 'sha256  name' lines")
    files: list[DumpFile]
    pg_server_version: str
    pg_dump_version: str
    snapshot: str | None = None
    state: DbState | None = None


class FileIndex(_Model):
    path: Literal["filestore.jsonl"]
    sha256: str = Field(pattern=_SHA256)


class FilestoreInfo(_Model):
    count: int = Field(ge=0)
    bytes: int = Field(ge=0)
    index: FileIndex
    missing: list[str] = Field(default_factory=list)


class OdooInfo(_Model):
    version: str | None = None
    major_version: str | None = None
    modules: dict[str, str | None] = Field(default_factory=dict)
    database_uuid: str | None = None
    addons_hash: str | None = None


class ToolInfo(_Model):
    name: Literal["liftgate"]
    version: str


class ArtifactManifest(_Model):
    """``manifest.json`` of an artifact."""

    format: Literal["liftgate.artifact/v1"]
    artifact_id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
    created_at: str
    source_env: SourceEnv
    db_dump: DbDump
    filestore: FilestoreInfo
    odoo: OdooInfo
    tables: dict[str, int] = Field(description="exact row count of every table, schema.table")
    sequences: dict[str, int] = Field(default_factory=dict)
    tool: ToolInfo

    @field_validator("created_at")
    @classmethod
    def _rfc3339_utc(cls, value: str) -> str:
        if not _RFC3339_UTC.match(value):
            raise ValueError("created_at must be RFC 3339 in UTC, e.g. 2026-11-22T00:16:41Z")
        return value

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"


def json_schema() -> dict[str, object]:
    schema = ArtifactManifest.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://liftgate.dev/schemas/artifact/v1.json"
    return schema


def load_manifest(path: Path) -> ArtifactManifest:
    """Read and validate a manifest; raises IntegrityError with one sentence if it is bad."""
    from pydantic import ValidationError

    from liftgate.errors import IntegrityError

    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IntegrityError(f"cannot read the artifact manifest {path}: {exc}") from exc
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        found = raw.get("format") if isinstance(raw, dict) else None
        raise IntegrityError(f"{path} is not a {FORMAT} manifest (format {found!r})")
    try:
        return ArtifactManifest.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise IntegrityError(
            f"the artifact manifest {path} is invalid: {where}: {err['msg']}"
        ) from None
