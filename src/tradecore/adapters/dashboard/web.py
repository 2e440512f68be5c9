"""The dashboard over HTTP: one page, its view as JSON, and a server-sent event stream.

Read-only: GET routes only, nothing here changes the bot. Bound to a loopback address by
default; anywhere else a token is required (`binding_problem`). With a token set, every
route asks for it — as `Authorization: Bearer <token>`, or once as `/dashboard?token=<token>`,
which answers with a cookie and a redirect to the bare address, so the token leaves the
address bar and the browser history. The token is never logged nor put in a page.

Several accounts (`mount_accounts`): `/dashboard` lists them (open positions, unprotected now
and PnL of each, and their total; `/dashboard/accounts.json` the same as JSON, keyed by
fingerprint) and links each account's own page, `/dashboard/accounts/<fingerprint>/dashboard`,
which is the one-account page with its `view.json` and `stream` under it.
"""

import asyncio
import contextlib
import hmac
import html
import ipaddress
from collections.abc import Mapping
from importlib import resources
from typing import Any
from urllib.parse import quote

from aiohttp import web

from .feed import Feed, accounts_overview

PREFIX = "/dashboard"
COOKIE = "tradecore_dashboard"
_FEED: web.AppKey[Feed] = web.AppKey("tradecore_dashboard_feed", Feed)
_TOKEN: web.AppKey[str] = web.AppKey("tradecore_dashboard_token", str)
_FEEDS: web.AppKey[Mapping[str, tuple[str, Feed]]] = web.AppKey("tradecore_dashboard_feeds")
ACCOUNT_PAGE = PREFIX + "/accounts/{account}/dashboard"


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


def mount_accounts(
    app: web.Application, feeds: Mapping[str, tuple[str, Feed]], *, token: str | None = None
) -> None:
    """Add the account list (`/dashboard`, `/dashboard/accounts.json`) and each account's page
    to `app`; `feeds` maps each account's fingerprint to its database name and its feed."""
    app[_FEEDS] = dict(feeds)
    app[_TOKEN] = token or ""
    app.router.add_get(PREFIX, _list_page)
    app.router.add_get(f"{PREFIX}/accounts.json", _list_json)
    app.router.add_get(ACCOUNT_PAGE, _page)
    app.router.add_get(f"{ACCOUNT_PAGE}/view.json", _view)
    app.router.add_get(f"{ACCOUNT_PAGE}/stream", _stream)
    app.on_shutdown.append(_end_streams)


async def _end_streams(app: web.Application) -> None:
    feeds = [app[_FEED]] if _FEED in app else [feed for _, feed in app[_FEEDS].values()]
    for feed in feeds:
        feed.end()  # open streams end now; aiohttp would wait for them otherwise


def _feed(request: web.Request) -> Feed:
    """The feed of the page asked for: the one of `mount`, or the account's in the address."""
    if _FEED in request.app:
        return request.app[_FEED]
    wanted = request.match_info["account"]
    feeds = request.app[_FEEDS]
    if wanted not in feeds:
        raise web.HTTPNotFound(
            text=f"no account {wanted!r} here; the accounts: {', '.join(feeds) or 'none'}\n"
        )
    return feeds[wanted][1]


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


async def _page(request: web.Request) -> web.Response:
    answer = _token_offered(request)
    if answer is not None:
        return answer
    _feed(request)  # an unknown account is a 404, not an empty page
    page = resources.files(__package__).joinpath("page.html").read_text(encoding="utf-8")
    return web.Response(text=page, content_type="text/html", headers=_NO_STORE)


async def _view(request: web.Request) -> web.Response:
    if not _allowed(request):
        return _refused()
    view = await _feed(request).view()
    return web.json_response(view, headers=_NO_STORE)


async def _stream(request: web.Request) -> web.StreamResponse:
    if not _allowed(request):
        return _refused()
    feed = _feed(request)
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


def _token_offered(request: web.Request) -> web.Response | None:
    """A page's answer when the token decides it: refused without the right one; with the
    right one in the address, kept in a cookie (whose path covers every dashboard route) and
    dropped from the address by a redirect. None: serve the page."""
    token = request.app[_TOKEN]
    offered = request.query.get("token")
    if token and offered is not None:
        if not hmac.compare_digest(offered.encode(), token.encode()):
            return _refused()
        location = request.rel_url.raw_path
        response = web.Response(status=303, headers={"Location": location, **_NO_STORE})
        response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path=PREFIX)
        return response
    return None if _allowed(request) else _refused()


async def _list_page(request: web.Request) -> web.Response:
    answer = _token_offered(request)
    if answer is not None:
        return answer
    overview = await accounts_overview(request.app[_FEEDS])
    return web.Response(text=_list_html(overview), content_type="text/html", headers=_NO_STORE)


async def _list_json(request: web.Request) -> web.Response:
    if not _allowed(request):
        return _refused()
    overview = await accounts_overview(request.app[_FEEDS])
    return web.json_response(overview, headers=_NO_STORE)


def _list_html(overview: Mapping[str, Any]) -> str:
    """The account selector: one row per account linking its page, then the total."""
    rows = []
    for key, a in overview["accounts"].items():
        link = f"dashboard/accounts/{quote(key, safe='')}/dashboard"  # relative, as the page's
        state = html.escape(a["error"]) if a["error"] else html.escape(str(a["status"]))
        rows.append(
            f'<tr data-account="{html.escape(key)}"><td><a href="{html.escape(link)}">'
            f"{html.escape(key)}</a></td><td>{html.escape(a['database'])}</td>"
            f'<td class="num">{_cell(a["open_positions"])}</td>'
            f'<td class="num">{_cell(a["unprotected"])}</td>'
            f'<td class="num">{_cell(a["pnl_realized"])}</td><td>{state}</td></tr>'
        )
    t = overview["total"]
    rows.append(
        f'<tr data-account="TOTAL"><th>total</th><th>{t["accounts"]} accounts</th>'
        f'<th class="num">{t["open_positions"]}</th><th class="num">{t["unprotected"]}</th>'
        f'<th class="num">{t["pnl_realized"]}</th><th></th></tr>'
    )
    warnings = "".join(
        f'<p class="warning">warning: {html.escape(w)}</p>\n' for w in t.get("warnings", ())
    )
    return _LIST_PAGE.format(
        rows="\n".join(rows), now=html.escape(str(overview["now"])), warnings=warnings
    )


def _cell(value: object) -> str:
    return "—" if value is None else html.escape(str(value))


_LIST_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tradecore accounts</title>
<style>
body {{ font: 13px/1.4 system-ui, sans-serif; margin: 16px; color: #1d2330; }}
table {{ border-collapse: collapse; }} .num {{ text-align: right; }}
th, td {{ text-align: left; padding: 2px 10px; border-bottom: 1px solid #eceef2; }}
</style></head><body>
<h1>tradecore: accounts</h1><p>as of {now}; each account's page updates live.</p>
<table id="accounts"><tr><th>account</th><th>database</th><th>open positions</th>
<th>unprotected now</th><th>realized PnL</th><th>status</th></tr>
{rows}
</table>
{warnings}</body></html>
"""
_NO_STORE = {"Cache-Control": "no-store"}
