"""Decoding `text/event-stream` line by line (the WHATWG rules Keel's server needs).

`Decoder.feed(line)` returns a `ServerSentEvent` when a blank line completes one, `KEEP_ALIVE`
for a comment line (the server's heartbeat: proof the connection lives), else None.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class ServerSentEvent:
    id: str | None
    event: str
    data: str
    retry: int | None = None


class _KeepAlive:
    def __repr__(self) -> str:
        return "KEEP_ALIVE"


KEEP_ALIVE: Final = _KeepAlive()


class Decoder:
    """Accumulates fields until a blank line dispatches them."""

    def __init__(self) -> None:
        self._id: str | None = None
        self._event = ""
        self._data: list[str] = []
        self._retry: int | None = None

    def feed(self, line: str) -> ServerSentEvent | _KeepAlive | None:
        line = line.rstrip("\r\n")
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return KEEP_ALIVE
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._id = value
        elif name == "retry" and value.isdigit():
            self._retry = int(value)
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        if not self._data:
            self._event = ""
            return None
        event = ServerSentEvent(
            self._id, self._event or "message", "\n".join(self._data), self._retry
        )
        self._event, self._data, self._retry = "", [], None
        return event
