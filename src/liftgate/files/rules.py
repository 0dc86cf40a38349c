"""Verification rules for promoted files (``[[files.verify]]`` and ``--expect-prefix``)."""

from __future__ import annotations

import fnmatch
import json
import re
import tomllib
from collections.abc import Sequence
from pathlib import Path

from liftgate.config import VerifyRule

__all__ = ["check_rules", "rules_for"]

_MAX_TEXT = 64 << 20


def rules_for(rel_path: str, rules: Sequence[VerifyRule]) -> list[VerifyRule]:
    """The rules whose glob matches ``rel_path`` (root-relative, ``/``-separated).

    ``*`` and ``**`` both match across folders (fnmatch semantics); ``docs/*.md`` matches
    ``docs/a.md`` and ``docs/sub/a.md``.
    """
    return [r for r in rules if fnmatch.fnmatchcase(rel_path, r.glob)]


def _read_text(path: Path) -> str | None:
    if path.stat().st_size > _MAX_TEXT:
        return None
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        return None


def _not_json(name: str) -> None:
    """``NaN``, ``Infinity`` and ``-Infinity`` are not JSON (RFC 8259), though Python reads
    them: a file holding one does not parse as json."""
    raise ValueError(f"{name} is not a JSON value")


def check_rules(path: Path, rel_path: str, rules: list[VerifyRule]) -> list[str]:
    """Failures of ``rules`` on the file at ``path`` (named ``rel_path`` in messages)."""
    failures: list[str] = []
    if not rules:
        return failures
    text = _read_text(path)
    for rule in rules:
        if text is None:
            failures.append(
                f"{rel_path}: is not UTF-8 text under 64 MiB, rule {rule.glob!r} cannot hold"
            )
            continue
        if rule.starts_with is not None and not text.startswith(rule.starts_with):
            failures.append(f"{rel_path}: does not start with {rule.starts_with!r}")
        if rule.contains is not None and rule.contains not in text:
            failures.append(f"{rel_path}: does not contain {rule.contains!r}")
        if rule.regex is not None and not re.search(rule.regex, text, re.MULTILINE):
            failures.append(f"{rel_path}: does not match /{rule.regex}/")
        if rule.parses_as is not None:
            try:
                if rule.parses_as == "json":
                    json.loads(text, parse_constant=_not_json)
                elif rule.parses_as == "toml":
                    tomllib.loads(text)
                else:
                    import yaml

                    try:  # every document of the file (``---`` separates them)
                        for _ in yaml.safe_load_all(text):
                            pass
                    except yaml.YAMLError as exc:
                        raise ValueError(str(exc)) from exc
            except ValueError as exc:
                first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                failures.append(f"{rel_path}: does not parse as {rule.parses_as} ({first})")
    return failures
