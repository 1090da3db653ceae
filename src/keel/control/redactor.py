"""Scrub handed-out secrets from anything that leaves the process: run events, spans, logs,
API responses.

A `SecretRedactor` is given every plaintext the process has handed out (the vault adds each one
it decrypts) and replaces, wherever it appears inside a larger string:

- the raw value;
- its JSON-escaped form (what it looks like inside serialised JSON text);
- URL encodings: `quote(value, safe="")`, `quote(value)` (keeps "/"), `quote_plus`, each with
  upper- and lower-case percent escapes;
- hexadecimal of its UTF-8 bytes (lower and upper case);
- base64 and URL-safe base64 — of the value alone and of the value *inside a larger encoded
  blob* (e.g. `Basic base64(user:secret)`): the three byte alignments are searched, and the
  whole surrounding base64 run is replaced, since its edges also carry bits of the secret.

Values shorter than `MIN_ENCODED_LENGTH` characters are only scrubbed raw and JSON-escaped: their
encodings are too short to tell apart from ordinary text. Values shorter than
`MIN_SECRET_LENGTH` are refused by `add` (they cannot be scrubbed without mangling text).
Not covered: double encodings, compression, encryption, or a secret split across strings.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import string
import threading
from collections.abc import Iterable
from typing import Any, TypeVar
from urllib.parse import quote, quote_plus

from pydantic import SecretStr

from keel.errors import InvalidInput

MIN_SECRET_LENGTH = 4
MIN_ENCODED_LENGTH = 6
REPLACEMENT = "[REDACTED:secret]"
_B64_CHARS = frozenset(string.ascii_letters + string.digits + "+/_-")
_PERCENT = re.compile(r"%[0-9A-F]{2}")

T = TypeVar("T")


def _lower_percent(text: str) -> str:
    return _PERCENT.sub(lambda m: m.group(0).lower(), text)


def _plain_forms(secret: str) -> set[str]:
    forms = {secret, json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]}
    if len(secret) >= MIN_ENCODED_LENGTH:
        raw = secret.encode()
        for encoded in (quote(secret, safe=""), quote(secret), quote_plus(secret)):
            forms.update({encoded, _lower_percent(encoded)})
        forms.update({raw.hex(), raw.hex().upper()})
    return forms


def _base64_cores(secret: str) -> set[str]:
    """The base64 characters fully determined by the secret, at each of the 3 alignments."""
    raw = secret.encode()
    if len(secret) < MIN_ENCODED_LENGTH:
        return set()
    cores: set[str] = set()
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + raw).decode().rstrip("=")
        start = -(-8 * offset // 6)  # first character with no prefix bits
        end = 8 * (offset + len(raw)) // 6  # last complete 6-bit group
        core = encoded[start:end]
        if len(core) >= 4:
            cores.update({core, core.replace("+", "-").replace("/", "_")})
    return cores


def _alternation(needles: Iterable[str]) -> re.Pattern[str] | None:
    ordered = sorted(set(needles), key=len, reverse=True)
    return re.compile("|".join(re.escape(n) for n in ordered)) if ordered else None


def _expand_b64(text: str, start: int, end: int) -> tuple[int, int]:
    """Widen a match to the whole base64 run around it (its edge characters leak bits too)."""
    lo, hi = start, end
    while lo > 0 and text[lo - 1] in _B64_CHARS:
        lo -= 1
    while hi < len(text) and text[hi] in _B64_CHARS:
        hi += 1
    padding = 0
    while hi < len(text) and padding < 2 and text[hi] == "=":
        hi, padding = hi + 1, padding + 1
    return lo, hi


class SecretRedactor:
    """Replaces every registered secret (and the encodings above) with `[REDACTED:secret]`.

    Thread-safe; `add` is cheap and the matcher is rebuilt lazily on the next scrub.
    """

    def __init__(
        self, secrets: Iterable[str | SecretStr] = (), *, replacement: str = REPLACEMENT
    ) -> None:
        self.replacement = replacement
        self._secrets: set[str] = set()
        self._lock = threading.Lock()
        self._plain: re.Pattern[str] | None = None
        self._b64: re.Pattern[str] | None = None
        self._dirty = False
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str | SecretStr) -> None:
        value = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
        if len(value) < MIN_SECRET_LENGTH:
            raise InvalidInput(
                f"a secret shorter than {MIN_SECRET_LENGTH} characters cannot be redacted",
                field="secret",
            )
        with self._lock:
            if value not in self._secrets:
                self._secrets.add(value)
                self._dirty = True

    def __len__(self) -> int:
        return len(self._secrets)

    def __repr__(self) -> str:
        return f"SecretRedactor({len(self._secrets)} secrets)"

    def _matchers(self) -> tuple[re.Pattern[str] | None, re.Pattern[str] | None]:
        with self._lock:
            if self._dirty:
                plain: set[str] = set()
                cores: set[str] = set()
                for secret in self._secrets:
                    plain |= _plain_forms(secret)
                    cores |= _base64_cores(secret)
                self._plain, self._b64 = _alternation(plain), _alternation(cores - plain)
                self._dirty = False
            return self._plain, self._b64

    def _spans(self, text: str) -> list[tuple[int, int]]:
        plain, b64 = self._matchers()
        spans = [m.span() for m in plain.finditer(text)] if plain else []
        if b64:
            spans += [_expand_b64(text, *m.span()) for m in b64.finditer(text)]
        spans.sort()
        merged: list[tuple[int, int]] = []
        for start, end in spans:
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
            else:
                merged.append((start, end))
        return merged

    def contains_secret(self, text: str) -> bool:
        return bool(self._spans(text))

    def scrub(self, text: str) -> str:
        """`text` with every occurrence replaced; the same object when nothing matched."""
        spans = self._spans(text)
        if not spans:
            return text
        parts, last = [], 0
        for start, end in spans:
            parts += [text[last:start], self.replacement]
            last = end
        parts.append(text[last:])
        return "".join(parts)

    def logging_filter(self) -> logging.Filter:
        """A `logging.Filter` that scrubs each record's formatted message (attach it to handlers)."""
        redactor = self

        class _Scrub(logging.Filter):
            def filter(self, record: logging.LogRecord) -> bool:
                message = record.getMessage()
                scrubbed = redactor.scrub(message)
                if scrubbed is not message:
                    record.msg, record.args = scrubbed, None
                return True

        return _Scrub()

    def scrub_value(self, value: T) -> T:
        """Scrub every string (and mapping key) inside a JSON-like value; other leaves as is."""
        return self._scrub_any(value)  # type: ignore[no-any-return]

    def _scrub_any(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, dict):
            return {
                (self.scrub(k) if isinstance(k, str) else k): self._scrub_any(v)
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [self._scrub_any(v) for v in value]
        if isinstance(value, tuple):
            return tuple(self._scrub_any(v) for v in value)
        return value


__all__ = ["MIN_SECRET_LENGTH", "REPLACEMENT", "SecretRedactor"]
