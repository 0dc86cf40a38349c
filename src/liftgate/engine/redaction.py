"""Redaction of secrets from everything liftgate writes about itself.

liftgate's own records — evidence, history, ops store, logs, messages — pass through
``Redactor`` before they are written. The user's content (promoted files, dumps) is data and
is never redacted. Rules:

* the password of a URL (``scheme://user:PASSWORD@host``);
* ``password=...``, ``token: ...``, ``api_key=...`` and similar key/value pairs (libpq
  conninfo, odoo.conf, command lines, environment assignments);
* ``Authorization: Bearer ...`` headers, PEM private key blocks, well-known token formats;
* in structured data, the value of any key whose name looks secret;
* exact values registered at run time (a password read from the environment or a file);
* extra regular expressions from ``[redaction] patterns`` in liftgate.toml.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import Any

__all__ = ["REDACTED", "Redactor", "is_secret_key"]

REDACTED = "[REDACTED]"

_SECRET_WORDS = frozenset(
    {
        "password",
        "passwd",
        "passphrase",
        "pwd",
        "secret",
        "token",
        "apikey",
        "credential",
        "credentials",
        "authorization",
        "cookie",
    }
)
_SECRET_PAIRS = ("api_key", "access_key", "private_key", "client_secret", "session_id")

# (source, flags) of each pattern; compiled on first use (``_patterns``)
_PATTERN_SOURCES: tuple[tuple[str, int], ...] = (
    # scheme://user:password@host
    (r"(?P<pre>[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@]*:)(?P<secret>[^\s@/]+)(?=@)", 0),
    (r"(?P<pre>\b(?:Bearer|Basic|Token)\s+)(?P<secret>[A-Za-z0-9._~+/\-]+=*)", 0),
    # key=value / key: value / "key": "value"
    (
        (
            r"(?P<pre>(?<![A-Za-z0-9])[\"']?"
            r"[A-Za-z0-9_.\-]*(?:pass(?:word|wd|phrase|(?![a-z]))|pwd|secret|token|api[_-]?key|"
            r"access[_-]?key|private[_-]?key|credential|authorization|cookie|"
            r"session[_-]?id)[A-Za-z0-9_.\-]*"
            r"[\"']?\s*[=:]\s*[\"']?)(?P<secret>[^\s\"',;&]+)"
        ),
        re.IGNORECASE,
    ),
    (
        (
            r"(?P<pre>)(?P<secret>-----BEGIN [A-Z ]*PRIVATE KEY-----.*?"
            r"-----END [A-Z ]*PRIVATE KEY-----)"
        ),
        re.DOTALL,
    ),
    (r"(?P<pre>)(?P<secret>\b(?:AKIA|ASIA)[0-9A-Z]{16}\b)", 0),
    (r"(?P<pre>)(?P<secret>\bgh[pousr]_[A-Za-z0-9]{30,}\b)", 0),
    (r"(?P<pre>)(?P<secret>\bxox[abprs]-[A-Za-z0-9\-]{10,}\b)", 0),
)


@functools.cache
def _patterns() -> tuple[re.Pattern[str], ...]:
    """The patterns, compiled once; most texts have no trigger word and never need them."""
    return tuple(re.compile(source, flags) for source, flags in _PATTERN_SOURCES)


# every pattern above needs one of these (lowercased): text without any of them is left alone
# quickly — substring tests, much faster than a case-insensitive alternation
_TRIGGERS = (
    "pass",
    "pwd",
    "secret",
    "token",
    "key",
    "credential",
    "authorization",
    "cookie",
    "session",
    "bearer",
    "basic",
    "://",
    "-----begin",
    "akia",
    "asia",
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "xoxa-",
    "xoxb-",
    "xoxp-",
    "xoxr-",
    "xoxs-",
)


def _triggered(text: str) -> bool:
    lowered = text.lower()
    return any(word in lowered for word in _TRIGGERS)


# Redacted texts are remembered per Redactor: a run writes the same paths, ids and digests
# many times (journal, plan, evidence, history). Only short texts are kept, and the memo
# is emptied when it is full or when a secret value is registered.
_MEMO_MAX = 4096
_MEMO_TEXT_MAX = 1024


@functools.lru_cache(maxsize=4096)
def is_secret_key(name: str) -> bool:
    """True when a field or variable called ``name`` holds a secret."""
    lowered = name.lower()
    if any(pair in lowered.replace("-", "_") for pair in _SECRET_PAIRS):
        return True
    return any(part in _SECRET_WORDS for part in re.split(r"[_.\-\s]+", lowered))


class Redactor:
    """Replaces secrets by ``[REDACTED]`` in text and in JSON-like data.

    ``text`` is a pure function of its argument and of the redactor's rules (patterns,
    registered values), so results are memoized; registering a value forgets them.
    """

    def __init__(self, extra_patterns: Iterable[str] = (), values: Iterable[str] = ()) -> None:
        self._extra = [re.compile(p) for p in extra_patterns]
        self._values: set[str] = {v for v in values if v}
        self._ordered_values = sorted(self._values, key=len, reverse=True)
        self._memo: dict[str, str] = {}

    def add_value(self, value: str | None) -> None:
        """Redact this exact value wherever it appears (e.g. a password read at run time)."""
        if value and len(value) >= 4:
            self._values.add(value)
            self._ordered_values = sorted(self._values, key=len, reverse=True)
            # after the rules changed: a text() that read the old rules wrote to the old memo
            self._memo = {}

    def text(self, value: str) -> str:
        memo = self._memo  # taken before the rules are read (see add_value)
        done = memo.get(value)
        if done is not None:
            return done
        out = self._redact(value)
        if len(value) <= _MEMO_TEXT_MAX:
            if len(memo) >= _MEMO_MAX:
                memo.clear()
            memo[value] = out
        return out

    def _redact(self, value: str) -> str:
        out = value
        for secret in self._ordered_values:
            if secret in out:
                out = out.replace(secret, REDACTED)
        if _triggered(out):
            for pattern in _patterns():
                out = pattern.sub(_keep_pre, out)
        for extra in self._extra:
            out = extra.sub(REDACTED, out)
        return out

    def data(self, value: Any, *, key: str | None = None) -> Any:
        """A copy of JSON-like ``value`` with secrets redacted (keys that look secret too)."""
        if key is not None and is_secret_key(key) and isinstance(value, str | int | float):
            return REDACTED if value not in ("", None) else value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            # keys are text too (a URL with its password can be a key)
            return {self.text(str(k)): self.data(v, key=str(k)) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.data(v) for v in value]
        if value is None or isinstance(value, bool | int | float):
            return value
        return self.text(str(value))  # a path, a time...: as text, the way JSON writes it


def _keep_pre(match: re.Match[str]) -> str:
    return match.group("pre") + REDACTED
