"""The dashboard's files are served by the app itself, beside an API they do not shadow."""

from __future__ import annotations

import re

from dialbatch.web.dashboard import STATIC_DIR
from tests.conftest import Harness

SVG_NAMESPACE = "http://www.w3.org/2000/svg"


async def test_root_serves_the_page_with_a_same_origin_policy(api: Harness) -> None:
    answer = await api.client.get("/")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/ui/js/main.js">' in answer.text
    policy = answer.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy
    assert "http" not in policy  # no other origin is allowed anything
    assert "set-cookie" not in answer.headers


async def test_assets_are_served_from_the_package(api: Harness) -> None:
    script = await api.client.get("/ui/js/main.js")
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    assert script.headers["x-content-type-options"] == "nosniff"
    nested = await api.client.get("/ui/js/pages/batch.js")
    assert nested.status_code == 200 and "export class BatchPage" in nested.text
    style = await api.client.get("/ui/app.css")
    assert style.status_code == 200 and style.headers["content-type"].startswith("text/css")
    # no file outside static/ is reachable
    assert (await api.client.get("/ui/../dashboard.py")).status_code == 404
    assert (await api.client.get("/ui/%2e%2e/dashboard.py")).status_code == 404


async def test_no_file_names_another_origin(api: Harness) -> None:
    """Every file, as served: no address elsewhere (the SVG namespace is a name, not a
    request), no CSS import or url() that could fetch one."""
    files = [p for p in STATIC_DIR.rglob("*") if p.is_file()]
    assert len(files) >= 10
    for path in files:
        served = "/" if path.name == "index.html" else f"/ui/{path.relative_to(STATIC_DIR)}"
        answer = await api.client.get(served)
        assert answer.status_code == 200, served
        text = answer.text.replace(SVG_NAMESPACE, "")
        assert not re.search(r"https?://|//cdn|@import", text), served
        if path.suffix == ".css":
            assert "url(" not in text, served


async def test_the_api_is_where_it_was(api: Harness) -> None:
    unauthenticated = await api.client.get("/v1/api/batch-calls")
    assert unauthenticated.status_code == 401
    assert unauthenticated.json()["error"] == "Unauthorized"
    listed = await api.client.get("/v1/api/batch-calls", headers=api.headers)
    assert listed.status_code == 200 and "batches" in listed.json()
    assert (await api.client.get("/healthz")).json() == {"status": "ok"}
    paths = (await api.client.get("/openapi.json")).json()["paths"]
    assert "/" not in paths and not any(p.startswith("/ui") for p in paths)
    missing = await api.client.get("/v1/api/nothing-here")
    assert missing.status_code == 404 and missing.json()["error"] == "Not found"
