"""The dashboard over HTTP: one page, its view as JSON, and a server-sent event stream.

Read-only: GET routes only, nothing here changes the bot. Bound to a loopback address by
default; anywhere else a token is required (`binding_problem`). With a token set, every
route asks for it — as `Authorization: Bearer <token>`, or once as `/dashboard?token=<token>`,
which answers with a cookie and a redirect to the bare address, so the token leaves the
address bar and the browser history. The token is never logged nor put in a page.
"""

import asyncio
import contextlib
import hmac
import ipaddress
from importlib import resources

from aiohttp import web

from .feed import Feed

PREFIX = "/dashboard"
COOKIE = "tradecore_dashboard"
_FEED: web.AppKey[Feed] = web.AppKey("tradecore_dashboard_feed", Feed)
_TOKEN: web.AppKey[str] = web.AppKey("tradecore_dashboard_token", str)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything


def binding_problem(host: str, token: str | None) -> str | None:
    """Why the dashboard may not be served on `host`, or None."""
    if token or is_loopback(host):
        return None
    return (
        f"the dashboard would listen on {host}, beyond this machine, without a token: set "
        "TRADECORE_DASHBOARD_TOKEN (or TRADECORE_DASHBOARD_TOKEN_FILE naming a file that "
        "holds it), or bind 127.0.0.1 and reach it through an SSH tunnel"
    )


def mount(app: web.Application, feed: Feed, *, token: str | None = None) -> None:
    """Add the dashboard's routes (`/dashboard`, `/dashboard/view.json`,
    `/dashboard/stream`) to `app`."""
    app[_FEED] = feed
    app[_TOKEN] = token or ""
    app.router.add_get(PREFIX, _page)
    app.router.add_get(f"{PREFIX}/view.json", _view)
    app.router.add_get(f"{PREFIX}/stream", _stream)
    app.on_shutdown.append(_end_streams)


async def _end_streams(app: web.Application) -> None:
    app[_FEED].end()  # open streams end now; aiohttp would wait for them otherwise


def _allowed(request: web.Request) -> bool:
    token = request.app[_TOKEN]
    if not token:
        return True
    header = request.headers.get("Authorization", "")
    offered = header[7:] if header.startswith("Bearer ") else request.cookies.get(COOKIE, "")
    return hmac.compare_digest(offered.encode(), token.encode())


def _refused() -> web.Response:
    return web.Response(
        status=401,
        text="this dashboard needs its token: open /dashboard?token=<the token> once "
        "(TRADECORE_DASHBOARD_TOKEN on the bot's machine)\n",
        headers={"WWW-Authenticate": 'Bearer realm="tradecore dashboard"'},
    )


async def _page(request: web.Request) -> web.StreamResponse:
    token = request.app[_TOKEN]
    offered = request.query.get("token")
    if token and offered is not None:
        if not hmac.compare_digest(offered.encode(), token.encode()):
            return _refused()
        response = web.Response(status=303, headers={"Location": PREFIX, **_NO_STORE})
        response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path=PREFIX)
        return response
    if not _allowed(request):
        return _refused()
    page = resources.files(__package__).joinpath("page.html").read_text(encoding="utf-8")
    return web.Response(text=page, content_type="text/html", headers=_NO_STORE)


async def _view(request: web.Request) -> web.Response:
    if not _allowed(request):
        return _refused()
    view = await request.app[_FEED].view()
    return web.json_response(view, headers=_NO_STORE)


async def _stream(request: web.Request) -> web.StreamResponse:
    if not _allowed(request):
        return _refused()
    feed = request.app[_FEED]
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "X-Accel-Buffering": "no", **_NO_STORE}
    )
    await response.prepare(request)
    with contextlib.suppress(ConnectionResetError, asyncio.CancelledError):
        async with feed.watch() as views:
            while True:
                try:
                    payload = await asyncio.wait_for(views.get(), feed.keepalive_seconds)
                except TimeoutError:
                    await response.write(b": keepalive\n\n")
                    continue
                if payload is None:
                    break
                await response.write(f"event: view\ndata: {payload}\n\n".encode())
    return response


_NO_STORE = {"Cache-Control": "no-store"}
