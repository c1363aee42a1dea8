"""The operator dashboard's pages: static files shipped in the package (gateway/ui), no build step, no CDN.

The pages hold no data and need no key; everything they show comes from the operator API (routes_operator),
which the page calls with the operator key the user types in."""

from __future__ import annotations

from importlib import resources

from aiohttp import web

from gateway.server.api import Answer, Api, Param, Params
from gateway.server.problems import not_found

api = Api()

UI = resources.files("gateway") / "ui"
CONTENT_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
#: no inline script or style, nothing from another origin, never framed
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
ASSET = Param(
    "asset",
    "path",
    description="a file of the dashboard",
    required=True,
    pattern=r"[a-z0-9][a-z0-9_-]{0,60}\.(js|css|html|svg)",
)


def _serve(name: str) -> web.Response:
    suffix = "." + name.rsplit(".", 1)[-1]
    page = UI / name
    if not page.is_file():
        raise not_found("file")
    return web.Response(
        body=page.read_bytes(), headers={"Content-Type": f"{CONTENT_TYPES[suffix]}; charset=utf-8", **SECURITY_HEADERS}
    )


@api.operation(
    "GET",
    "/ui",
    summary="The operator dashboard (asks for the operator key)",
    answers=(Answer(200, "the page", content_type="text/html", schema={"type": "string"}),),
    secured=False,
)
async def ui_index(request: web.Request, params: Params) -> web.Response:
    return _serve("index.html")


@api.operation(
    "GET",
    "/ui/{asset}",
    summary="A script, style sheet or image of the dashboard",
    params=(ASSET,),
    answers=(Answer(200, "the file", content_type="*/*", schema={"type": "string"}),),
    secured=False,
)
async def ui_asset(request: web.Request, params: Params) -> web.Response:
    return _serve(params[ASSET.name])
