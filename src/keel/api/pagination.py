"""Cursor pagination, newest first: `{"data": [...], "next_cursor": str | null, "has_more": bool}`.

A cursor is opaque to clients: url-safe base64 of `{"k": kind, "t": created_at, "i": id}`
plus a short checksum. The checksum and the kind catch a cursor that was edited, cut short
or taken from another listing (422 naming `query.cursor`). A cursor carries no authority:
every page query is scoped to the principal, so a forged position reveals nothing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from pydantic import BaseModel, Field

from keel.errors import InvalidInput

T = TypeVar("T")

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
CURSOR_FIELD = "query.cursor"


class Page(BaseModel, Generic[T]):
    """One page of a listing. Subclass per item type so the OpenAPI name is clean."""

    data: list[T]
    next_cursor: str | None = Field(
        default=None, description="Pass as `cursor` to get the next page; null on the last."
    )
    has_more: bool


@dataclass(frozen=True)
class Position:
    """Where a page ends: the (created_at, id) of its last item."""

    created_at: datetime
    id: str


def _checksum(payload: bytes) -> bytes:
    return hashlib.sha256(b"keel-cursor\0" + payload).digest()[:8]


def encode_cursor(kind: str, position: Position) -> str:
    payload = json.dumps(
        {"k": kind, "t": position.created_at.isoformat(), "i": position.id},
        separators=(",", ":"),
    ).encode()
    return base64.urlsafe_b64encode(payload + _checksum(payload)).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str) -> Position:
    """The position a cursor names; `InvalidInput(field="query.cursor")` if it is not ours."""
    invalid = InvalidInput("cursor is invalid; use next_cursor from a previous page", CURSOR_FIELD)
    if len(cursor) > 512:
        raise invalid
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError) as exc:
        raise invalid from exc
    payload, check = raw[:-8], raw[-8:]
    if len(raw) <= 8 or _checksum(payload) != check:
        raise invalid
    try:
        data = json.loads(payload)
        created_at = datetime.fromisoformat(data["t"])
        ident = data["i"]
    except (ValueError, KeyError, TypeError) as exc:
        raise invalid from exc
    if data.get("k") != kind or not isinstance(ident, str) or created_at.tzinfo is None:
        raise invalid
    return Position(created_at, ident)
