"""A real Keel server (uvicorn in a thread, executing fabric) and a TCP proxy in front of it
that can kill connections mid-stream or lose responses, so the client's reconnects and
retries are exercised against real dropped connections."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from keel.control.ratelimit import MemoryRateLimiter, RateLimitPolicy
from keel.fabric.service import Fabric
from keel.identity.keys import create_key
from keel.settings import RateLimitSetting
from keel.store.database import Database
from tests.api.conftest import GENEROUS, build_app, live_settings, make_settings, served


class Proxy:
    """Forwards 127.0.0.1:<port> to the server. `cut()` closes every open connection at
    once; `lose_responses = n` lets the next n requests reach the server and then closes
    their connection before any byte of the response reaches the client."""

    def __init__(self, upstream_port: int) -> None:
        self._upstream = ("127.0.0.1", upstream_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self.lose_responses = 0
        self.connections = 0
        self._stopped = threading.Event()
        threading.Thread(target=self._accept, name="proxy-accept", daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self._upstream)
            with self._lock:
                self.connections += 1
                lose = self.lose_responses > 0
                self.lose_responses -= 1 if lose else 0
                self._sockets.update((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, lose), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, lose: bool) -> None:
        try:
            while data := source.recv(65536):
                if lose:
                    break
                target.sendall(data)
        except OSError:
            pass
        finally:
            self._close(source, target)

    def _close(self, *sockets: socket.socket) -> None:
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()
            with self._lock:
                self._sockets.discard(sock)

    def cut(self) -> None:
        """Kill every open connection (both directions)."""
        with self._lock:
            open_sockets = list(self._sockets)
        self._close(*open_sockets)

    def close(self) -> None:
        self._stopped.set()
        self._listener.close()
        self.cut()


@dataclass
class KeelServer:
    url: str
    proxy: Proxy
    fabric: Fabric | None
    db: Database
    _keys: dict[tuple[str, str, tuple[str, ...]], str] = field(default_factory=dict)

    def key(
        self, tenant: str = "acme", user: str = "anna", scopes: tuple[str, ...] = ("*",)
    ) -> str:
        ident = (tenant, user, scopes)
        if ident not in self._keys:
            self._keys[ident] = create_key(self.db, tenant, user, scopes).secret
        return self._keys[ident]


@contextlib.contextmanager
def keel_server(
    fabric: Fabric | None, db: Database, tmp_path: Any, **app: Any
) -> Iterator[KeelServer]:
    """An app (executing FABRIC, or none) under uvicorn, behind a `Proxy`."""
    if fabric is not None:
        application = build_app(db, live_settings(fabric), fabric=fabric, **app)
    else:
        application = build_app(db, make_settings(tmp_path), **app)
    with served(application) as url:
        proxy = Proxy(int(url.rsplit(":", 1)[1]))
        try:
            yield KeelServer(proxy.url, proxy, fabric, db)
        finally:
            proxy.close()


@pytest.fixture
def keel(fabric: Fabric, tmp_path: Any) -> Iterator[KeelServer]:
    """An executing server reached through the proxy."""
    with keel_server(fabric, fabric.db, tmp_path) as server:
        yield server


def tight_reads(capacity: float = 1, refill: float = 1.5) -> MemoryRateLimiter:
    limits = dict.fromkeys(("turns", "runs", "writes"), GENEROUS)
    limits["reads"] = RateLimitSetting(capacity=capacity, refill_per_second=refill)
    return MemoryRateLimiter(RateLimitPolicy(limits))
