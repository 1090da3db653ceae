"""The committed OpenAPI document: `python -m keel.api.openapi > openapi.json`.

`tests/api/test_openapi.py` fails when the app's schema and the committed file differ,
so an API change is always a visible diff in review (and SDK generators see it).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from keel.api.agents import StaticAgentCatalog
from keel.api.app import create_app
from keel.control.ratelimit import MemoryRateLimiter, RateLimitPolicy
from keel.settings import Settings
from keel.store.database import Database

REGENERATE = ".venv/bin/python -m keel.api.openapi > openapi.json"


def build_openapi() -> dict[str, Any]:
    """The schema of an app built from neutral settings (no I/O; nothing is connected)."""
    settings = Settings(env="test", database_url="sqlite:///:memory:", _env_file=None)  # type: ignore[call-arg]
    app = create_app(
        settings,
        Database(settings.resolved_database_url),
        agents=StaticAgentCatalog(()),
        rate_limiter=MemoryRateLimiter(RateLimitPolicy(settings.rate_limits)),
    )
    return app.openapi()


def render() -> str:
    return json.dumps(build_openapi(), indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    sys.stdout.write(render())


if __name__ == "__main__":
    main()
