"""Prefixed, time-sortable ids (`run_01J…`), Stripe style.

The body is a ULID: 48 bits of milliseconds then 80 random bits, Crockford base32,
so ids sort by creation time and never collide across processes.
"""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, rem = divmod(value, 32)
        chars.append(_ALPHABET[rem])
    return "".join(reversed(chars))


def new_id(prefix: str) -> str:
    """A new id such as `run_01JD3…`; `prefix` names the resource kind."""
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    return f"{prefix}_{_encode(millis, 10)}{_encode(rand, 16)}"
