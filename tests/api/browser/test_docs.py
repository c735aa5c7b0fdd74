"""/docs and /redoc render in a browser with no internet: their scripts and styles are
served by dialbatch itself, and they list the API's endpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.client._server import LiveServer

ENDPOINTS = ("/v1/api/batch-calls/{batchId}/export", "/v1/api/batch-calls/{batchId}/calls")


def test_swagger_ui_renders_offline_and_lists_the_endpoints(
    live_server: LiveServer, page_of: Any, tmp_path: Path
) -> None:
    page, requests = page_of()
    page.goto(f"{live_server.url}/docs")
    page.wait_for_selector(".opblock-summary-path", timeout=30_000)
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    for endpoint in ENDPOINTS:
        assert any(endpoint in p.replace("\u200b", "") for p in paths), (endpoint, paths)
    assert page.locator(".swagger-ui .info .title").inner_text().startswith("dialbatch")
    page.screenshot(path=str(tmp_path / "docs.png"), full_page=False)
    assert any("/static-offline-docs/swagger-ui-bundle.js" in u for u in requests.seen)
    assert requests.outside == []


def test_redoc_renders_offline_and_lists_the_endpoints(
    live_server: LiveServer, page_of: Any, tmp_path: Path
) -> None:
    page, requests = page_of()
    page.goto(f"{live_server.url}/redoc")
    page.wait_for_selector("h1", timeout=30_000)
    export = page.locator("h2", has_text="Export a batch's calls and results (extension)")
    export.first.wait_for(timeout=30_000)
    headings = page.locator("h2").all_inner_texts()
    assert any(h.startswith("Start a batch from a CSV") for h in headings)
    assert "/v1/api/batch-calls/{batchId}/export" in page.locator("body").inner_text()
    page.screenshot(path=str(tmp_path / "redoc.png"), full_page=False)
    assert any("/static-offline-docs/redoc.standalone.js" in u for u in requests.seen)
    assert requests.outside == []
