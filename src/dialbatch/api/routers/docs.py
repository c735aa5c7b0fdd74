"""`/docs` (Swagger UI) and `/redoc` (ReDoc), served with their scripts and styles from this
server, so that they render on a machine without internet.

The files come from the `fastapi-offline` package (Swagger UI and ReDoc bundles, MIT),
mounted under /static-offline-docs. The pages carry a Content-Security-Policy that allows
only this server: ReDoc's bundle shows a logo from its CDN, and the policy makes the
browser refuse that request instead of sending it (ReDoc then hides the image).
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC_URL = "/static-offline-docs"
STATIC_DIR = Path(fastapi_offline.__file__).parent / "static"
# Scripts inline (the pages' own set-up), workers from blobs (ReDoc's search), nothing
# from any other origin.
CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; "
    "worker-src 'self' blob:; connect-src 'self'"
)


def install(app: FastAPI) -> None:
    """Serve /docs, /redoc and their files (the app is created with docs_url=None)."""
    app.mount(STATIC_URL, StaticFiles(directory=STATIC_DIR), name="static-offline-docs")
    openapi_url = app.openapi_url or "/openapi.json"
    oauth2_redirect = app.swagger_ui_oauth2_redirect_url or "/docs/oauth2-redirect"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_swagger_ui_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=f"{root}{oauth2_redirect}",
            swagger_js_url=f"{root}{STATIC_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{STATIC_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{STATIC_URL}/favicon.png",
            # No badge from validator.swagger.io: nothing leaves this server.
            swagger_ui_parameters={"validatorUrl": None},
        )
        page.headers["content-security-policy"] = CSP
        return page

    @app.get(oauth2_redirect, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_redoc_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{STATIC_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{STATIC_URL}/favicon.png",
            with_google_fonts=False,
        )
        page.headers["content-security-policy"] = CSP
        return page
