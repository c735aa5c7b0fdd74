"""The dashboard: static files served at `/` (the page) and `/ui/...` (its scripts and
styles), all from the package, so a browser loads nothing from anywhere else.

The page is plain HTML, CSS and JavaScript modules committed under web/static/: no build
step and no toolchain at run time, so `pip install dialbatch` (or `make run`) serves it on a
machine without internet. It talks only to the public API with the user's own key, so it can
show nothing that key could not read; the server gives it no other door.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

STATIC_DIR = Path(__file__).parent / "static"
ASSETS_PREFIX = "/ui"

# Everything from this origin only: a page that tried to load a script, a style, a font or
# an image from elsewhere, or to send a request elsewhere, is stopped by the browser itself.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Revalidate on every load (ETag/Last-Modified make that cheap), so an upgraded server
    # never runs yesterday's script against today's API.
    "Cache-Control": "no-cache",
}


class _Assets(StaticFiles):
    """StaticFiles with the dashboard's security and caching headers."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [(k.lower().encode(), v.encode()) for k, v in _HEADERS.items()]
                message = {**message, "headers": headers}
            await send(message)

        await super().__call__(scope, receive, send_with_headers)


def mount(app: FastAPI) -> None:
    """Serve the page at `/` and its files under `/ui/`; no API path starts with either."""

    @app.get("/", include_in_schema=False)
    async def dashboard() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers=_HEADERS)

    app.mount(ASSETS_PREFIX, _Assets(directory=STATIC_DIR), name="dashboard-assets")
