"""Credential injection: a tool names a vault secret (`credential: crm-token`); the gate
resolves it for the tenant of the call at the moment the tool runs and hands it over in the
narrowest form — an authenticated `httpx.AsyncClient` for http tools, `scope.credential()`
for python tools (only inside the tool's execution scope, see `keel.control.scope`).

Every value handed out is registered with the process's `SecretRedactor`, which scrubs tool
results (before the recorder, the model, events and spans see them), tool errors and — once
`install_log_redaction` ran — every log record. The value never enters `RunDeps`, tool
arguments, prompts or run events.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable
from typing import Any

import httpx

from keel.control.redactor import SecretRedactor
from keel.control.registry import ToolSpec
from keel.control.vault import Secret, Vault
from keel.errors import Forbidden

_log_lock = threading.Lock()
_log_redactors: weakref.WeakSet[SecretRedactor] = weakref.WeakSet()
_factory_installed = False


def _scrub_record(record: logging.LogRecord) -> None:
    for redactor in list(_log_redactors):
        if not len(redactor):
            continue
        message = record.getMessage()
        scrubbed = redactor.scrub(message)
        if scrubbed is not message:
            record.msg, record.args = scrubbed, None
        if record.exc_info:
            text = logging.Formatter().formatException(record.exc_info)
            if redactor.contains_secret(text):
                record.exc_text, record.exc_info = redactor.scrub(text), None
        if record.exc_text and redactor.contains_secret(record.exc_text):
            record.exc_text = redactor.scrub(record.exc_text)


def install_log_redaction(redactor: SecretRedactor) -> None:
    """Scrub REDACTOR's secrets from every log record of the process, whatever logger or
    handler it goes to (a log-record factory: filters on one handler miss the others)."""
    global _factory_installed
    with _log_lock:
        _log_redactors.add(redactor)
        if _factory_installed:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            _scrub_record(record)
            return record

        logging.setLogRecordFactory(factory)
        _factory_installed = True


class CredentialBroker:
    """Resolves tool credentials from the vault, per tenant, at execution time."""

    def __init__(
        self,
        vault: Callable[[], Vault],
        redactor: SecretRedactor,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._vault = vault
        self.redactor = redactor
        self.transport = transport

    def secret(self, tenant_id: str, name: str, *, actor: str) -> Secret:
        """The newest version of NAME for TENANT_ID (NotFound when the tenant has none)."""
        secret = self._vault().get(tenant_id, name, actor=actor)
        self.redactor.add(secret.value)
        return secret

    def http_client(self, tenant_id: str, spec: ToolSpec, *, actor: str) -> httpx.AsyncClient:
        """A client for SPEC's calls: its credential in the configured header (when it
        declares one), its timeout, and the broker's transport (tests: an ASGI app)."""
        headers: dict[str, str] = {}
        if spec.options.credential:
            if spec.auth is None:
                raise Forbidden(f"tool {spec.name!r} does not say how to send its credential")
            secret = self.secret(tenant_id, spec.options.credential, actor=actor)
            headers[spec.auth.header] = spec.auth.value(secret.reveal())
        timeout = float(spec.extra.get("timeout_seconds", 30))
        return httpx.AsyncClient(
            headers=headers, timeout=timeout, transport=self.transport, follow_redirects=False
        )


__all__ = ["CredentialBroker", "install_log_redaction"]
