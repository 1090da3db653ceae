"""HTTP tools from an OpenAPI operation: requests built from validated arguments, the
credential header never replaceable by an argument, answers mapped to results, failures the
model sees, or retries."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic_ai.exceptions import ToolFailed

from keel.control.http_tool import HttpOperation, HttpStatusError, http_function, load_document
from tests.control.harness import DEPLOYMENT

DOC = load_document(DEPLOYMENT / "crm.openapi.yaml")


def _app(seen: list[dict[str, Any]]) -> FastAPI:
    app = FastAPI()

    @app.get("/api/companies/{company_id:path}")
    async def company(company_id: str, request: Request) -> Any:
        seen.append({"path": request.url.path, "raw": request.scope["raw_path"].decode(),
                     "headers": dict(request.headers), "query": dict(request.query_params)})  # fmt: skip
        if company_id == "C-404":
            return JSONResponse({"error": "no such company"}, status_code=404)
        if company_id == "C-500":
            return JSONResponse({"error": "down"}, status_code=503)
        if company_id == "C-txt":
            return PlainTextResponse("plain text")
        return {"id": company_id}

    @app.post("/api/companies/{company_id}/notes")
    async def note(company_id: str, request: Request) -> Any:
        return {"saved": await request.json()}

    return app


@pytest.fixture
def client_and_seen() -> tuple[httpx.AsyncClient, list[dict[str, Any]]]:
    seen: list[dict[str, Any]] = []
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=_app(seen)), headers={"Authorization": "Bearer real"}
    )
    return client, seen


async def test_arguments_become_path_query_header_and_body(
    client_and_seen: tuple[httpx.AsyncClient, list[dict[str, Any]]],
) -> None:
    client, seen = client_and_seen
    get = HttpOperation.from_document(DOC, "getCompany")
    assert (get.method, get.base_url, get.path) == (
        "GET",
        "http://crm.test/api",
        "/companies/{company_id}",
    )
    result = await get.call(
        client,
        {
            "company_id": "C-1/../admin",
            "verbose": False,
            "X-Request-Id": "r1",
            "Authorization": "Bearer forged",
        },
    )
    assert result == {"id": "C-1/../admin"}
    # the path argument stays one path segment; the credential header is the client's
    assert seen[0]["raw"] == "/api/companies/C-1%2F..%2Fadmin"
    assert seen[0]["query"] == {"verbose": "false"}
    assert seen[0]["headers"]["x-request-id"] == "r1"
    assert seen[0]["headers"]["authorization"] == "Bearer real"
    post = HttpOperation.from_document(DOC, "addNote", base_url="http://crm.test/api/")
    assert await post.call(client, {"company_id": "C-1", "body": {"text": "hi"}}) == {
        "saved": {"text": "hi"}
    }


async def test_a_client_error_is_shown_to_the_model_and_a_server_error_is_retried(
    client_and_seen: tuple[httpx.AsyncClient, list[dict[str, Any]]],
) -> None:
    client, _ = client_and_seen
    get = HttpOperation.from_document(DOC, "getCompany")
    with pytest.raises(ToolFailed, match=r"HTTP 404: .*no such company"):
        await get.call(client, {"company_id": "C-404"})
    with pytest.raises(HttpStatusError, match="HTTP 503"):
        await get.call(client, {"company_id": "C-500"})
    assert await get.call(client, {"company_id": "C-txt"}) == "plain text"


async def test_an_http_tool_refuses_to_run_without_the_gate() -> None:
    function = http_function(HttpOperation.from_document(DOC, "getCompany"), "crm_company")
    with pytest.raises(ToolFailed, match="can only run behind Keel's tool gate"):
        await function(None, company_id="C-1")


def test_documents_with_recursive_or_remote_refs_are_refused() -> None:
    doc = {
        "openapi": "3.0.0",
        "servers": [{"url": "http://x"}],
        "paths": {"/a": {"get": {"operationId": "a", "parameters": [{"$ref": "#/p"}]}}},
        "p": {"$ref": "#/p"},
    }
    with pytest.raises(ValueError, match="too deep"):
        HttpOperation.from_document(doc, "a")
    doc["p"] = {"$ref": "http://elsewhere/schema.json"}
    with pytest.raises(ValueError, match="only local"):
        HttpOperation.from_document(doc, "a")
