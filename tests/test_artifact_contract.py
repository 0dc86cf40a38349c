"""The shipped JSON Schema is the typed model's, and both accept and refuse the same things."""

from __future__ import annotations

import json
from typing import Any

import jsonschema  # type: ignore[import-untyped,unused-ignore]
import pytest
from pydantic import ValidationError

from liftgate.artifacts.contract import SCHEMA_PATH, ArtifactManifest, json_schema

GOOD: dict[str, Any] = {
    "format": "liftgate.artifact/v1",
    "artifact_id": "prod-20261122-001641-33c152",
    "created_at": "2026-11-22T00:16:41Z",
    "source_env": {"name": "prod", "role": "production", "db": "prod"},
    "db_dump": {
        "format": "directory",
        "path": "db",
        "size": 3,
        "sha256": "0" * 64,
        "files": [{"name": "toc.dat", "size": 3, "sha256": "1" * 64}],
        "pg_server_version": "15.18",
        "pg_dump_version": "15.18",
        "snapshot": "00000003-00000002-1",
        "state": {"xid_snapshot": "740:742:740", "schema_digest": "abc", "database_oid": 16384},
    },
    "filestore": {
        "count": 0,
        "bytes": 0,
        "index": {"path": "filestore.jsonl", "sha256": "2" * 64},
        "missing": [],
    },
    "odoo": {"version": "17.0", "major_version": "17.0", "modules": {"base": "17.0.1.3"}},
    "tables": {"public.res_partner": 10},
    "sequences": {"public.res_partner_id_seq": 10},
    "tool": {"name": "liftgate", "version": "0.1.0"},
}


def test_shipped_schema_is_the_models() -> None:
    assert json.loads(SCHEMA_PATH.read_text()) == json_schema()


def _both(doc: dict[str, Any]) -> tuple[bool, bool]:
    schema = json.loads(SCHEMA_PATH.read_text())
    try:
        jsonschema.validate(doc, schema, cls=jsonschema.Draft202012Validator)
        by_schema = True
    except jsonschema.ValidationError:
        by_schema = False
    try:
        ArtifactManifest.model_validate(doc)
        by_model = True
    except ValidationError:
        by_model = False
    return by_schema, by_model


def test_good_manifest_accepted_by_both() -> None:
    assert _both(GOOD) == (True, True)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.update(format="liftgate.artifact/v2"),
        lambda d: d.update(extra_key=1),
        lambda d: d["source_env"].update(role="qa"),
        lambda d: d["db_dump"].update(sha256="not-a-digest"),
        lambda d: d["db_dump"]["files"][0].update(name="../escape"),
        lambda d: d.pop("tables"),
        lambda d: d["filestore"].update(count=-1),
    ],
)
def test_bad_manifest_refused_by_both(mutate: Any) -> None:
    doc = json.loads(json.dumps(GOOD))
    mutate(doc)
    assert _both(doc) == (False, False)
