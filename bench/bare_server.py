"""The baseline of bench/reads.py: a bare aiohttp handler answering every GET of one path with fixed bytes.

No middleware, no access log, no auth: what aiohttp itself costs to serve the same JSON.

    python bench/bare_server.py PORT PATH BODY_FILE
"""

from __future__ import annotations

import sys
from pathlib import Path

from aiohttp import web


def main() -> None:
    port, path, body_file = int(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    body = body_file.read_bytes()

    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get(path, handler)
    app.router.add_get("/healthz", handler)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


if __name__ == "__main__":
    main()
