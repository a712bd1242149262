"""The dashboard: one static page (HTML, vanilla JS, CSS in static/, no build step) served at `/`, which reads
the REST API and its event stream. Every response carries a strict Content-Security-Policy: scripts and styles
only from these files, no inline script, connections only back to this server."""

from __future__ import annotations

import importlib.resources
from collections.abc import Awaitable, Callable

from aiohttp import web

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",  # revalidate, so an upgraded forgebot serves its new page at once
}
# URL path -> (file in static/, content type)
FILES = {
    "/": ("index.html", "text/html"),
    "/static/render.js": ("render.js", "text/javascript"),  # builds the DOM; loaded before dashboard.js
    "/static/dashboard.js": ("dashboard.js", "text/javascript"),
    "/static/dashboard.css": ("dashboard.css", "text/css"),
    "/static/favicon.svg": ("favicon.svg", "image/svg+xml"),
}


def _serve(body: bytes, content_type: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(_request: web.Request) -> web.Response:
        return web.Response(body=body, content_type=content_type, charset="utf-8", headers=SECURITY_HEADERS)

    return handler


def add_dashboard(app: web.Application) -> None:
    """Add the page and its files to `app` (mount the API with forgebot.api.add_api on the same app)."""
    static = importlib.resources.files("forgebot.api").joinpath("static")
    for path, (name, content_type) in FILES.items():
        app.router.add_get(path, _serve(static.joinpath(name).read_bytes(), content_type))
