"""Output helpers shared by the CLI command modules: errors to stderr with an exit code."""

from __future__ import annotations

from typing import NoReturn

import typer

from keel.errors import InvalidInput, KeelError


def fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(message, err=True)
    raise typer.Exit(code)


def error_text(exc: KeelError) -> str:
    """`error: <message>`, then one `  <field>: <reason>` line per further bad field."""
    lines = [f"error: {exc.message}"]
    if isinstance(exc, InvalidInput):
        lines += [f"  {field}: {reason}" for field, reason in exc.more]
    return "\n".join(lines)
