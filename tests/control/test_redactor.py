from __future__ import annotations

import base64
import json
import logging
import re
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from keel.control.redactor import REPLACEMENT, SecretRedactor
from keel.errors import InvalidInput

SECRET = "sk_live_9f8e7d6c5b4a/+=&?x"


@pytest.fixture
def redactor() -> SecretRedactor:
    return SecretRedactor([SecretStr(SECRET)])


def test_raw_secret_inside_larger_text_is_scrubbed(redactor: SecretRedactor) -> None:
    out = redactor.scrub(f"error: auth failed for key={SECRET}; retrying")
    assert SECRET not in out
    assert out == f"error: auth failed for key={REPLACEMENT}; retrying"


@pytest.mark.parametrize(
    "encode",
    [
        lambda s: quote(s, safe=""),
        quote,
        quote_plus,
        lambda s: re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), quote(s, safe="")),
        lambda s: json.dumps(s)[1:-1],
        lambda s: s.encode().hex(),
        lambda s: base64.b64encode(s.encode()).decode(),
        lambda s: base64.urlsafe_b64encode(s.encode()).decode().rstrip("="),
    ],
    ids=["url", "url-keep-slash", "url-plus", "url-lowercase", "json", "hex", "b64", "b64url"],
)
def test_encoded_secret_is_scrubbed(redactor: SecretRedactor, encode: object) -> None:
    encoded = encode(SECRET)  # type: ignore[operator]
    text = f"GET https://api.example.com/v1?token={encoded}&page=2"
    out = redactor.scrub(text)
    assert encoded not in out
    assert REPLACEMENT in out
    assert out.endswith("&page=2")


@pytest.mark.parametrize("prefix", ["", "u:", "us:", "user:", "a-much-longer-user-name:"])
def test_secret_inside_a_larger_base64_blob_is_scrubbed(
    redactor: SecretRedactor, prefix: str
) -> None:
    blob = base64.b64encode(f"{prefix}{SECRET}:trailer".encode()).decode()
    out = redactor.scrub(f"Authorization: Basic {blob}\nnext line")
    assert blob not in out
    assert out == f"Authorization: Basic {REPLACEMENT}\nnext line"


def test_json_structures_are_scrubbed_in_values_and_keys(redactor: SecretRedactor) -> None:
    event = {
        "tool": "crm",
        "args": {"headers": [f"Bearer {SECRET}"], SECRET: 1},
        "n": 3,
        "nested": ({"url": f"https://x/?k={quote(SECRET, safe='')}"},),
    }
    out = redactor.scrub_value(event)
    assert SECRET not in json.dumps(out, default=str)
    assert quote(SECRET, safe="") not in json.dumps(out, default=str)
    assert out["n"] == 3 and out["tool"] == "crm"


def test_serialised_json_text_is_scrubbed() -> None:
    secret = 'pa"ss\\word-123'
    r = SecretRedactor([secret])
    out = r.scrub(json.dumps({"password": secret}))
    assert json.loads(out) == {"password": REPLACEMENT}


def test_text_without_secrets_is_returned_unchanged(redactor: SecretRedactor) -> None:
    text = "nothing to see: sk_live_ but not the key"
    assert redactor.scrub(text) is text
    assert not redactor.contains_secret(text)


def test_too_short_secret_is_refused() -> None:
    with pytest.raises(InvalidInput):
        SecretRedactor(["abc"])


def test_repr_never_shows_secrets(redactor: SecretRedactor) -> None:
    assert SECRET not in repr(redactor)


@settings(max_examples=150, deadline=None)
@given(
    secret=st.text(
        alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=8, max_size=40
    ),
    before=st.text(max_size=30),
    after=st.text(max_size=30),
)
def test_any_planted_secret_never_survives(secret: str, before: str, after: str) -> None:
    r = SecretRedactor([secret])
    for form in (secret, quote(secret, safe=""), base64.b64encode(secret.encode()).decode()):
        assert form not in r.scrub(before + form + after)


def test_logging_filter_scrubs_formatted_messages(
    redactor: SecretRedactor, caplog: pytest.LogCaptureFixture
) -> None:
    logger = logging.getLogger("keel.test.redaction")
    caplog.handler.addFilter(redactor.logging_filter())
    with caplog.at_level(logging.INFO, logger="keel.test.redaction"):
        logger.info("calling CRM with token %s", SECRET)
    assert SECRET not in caplog.text
    assert REPLACEMENT in caplog.text
