"""The redactor: secrets go, words that only look like them stay."""

from __future__ import annotations

import pytest

from liftgate.engine.redaction import Redactor


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ('"password": "hunter2x"', "hunter2x"),
        ("pass=abc123", "abc123"),
        ("db_pass: zz9", "zz9"),
        ("postgresql://odoo:s3cret@db/prod", "s3cret"),
        ("Authorization: Bearer abc.def.ghi", "abc.def.ghi"),
    ],
)
def test_secrets_are_redacted(text: str, secret: str) -> None:
    out = Redactor().text(text)
    assert secret not in out and "[REDACTED]" in out


def test_words_that_only_start_like_a_secret_are_kept() -> None:
    text = '{"passed": true, "passes": 3, "bypassed": false}'
    assert Redactor().text(text) == text
    data = {"passed": True, "smoke": [{"passed": False}]}
    assert Redactor().data(data) == data
