"""The HTTP endpoints of --http (web.py holds the server and its guard).

  GET  /             the dashboard (dashboard.py): a page without data, served without
                       the token, which it asks for and sends with each request
  GET  /health         200 while work moves, 503 while a share is away or nothing has
                       moved for --http-stall seconds
  GET  /api/status     the run as the console sees it (observe.RunState.snapshot)
  GET  /api/history    read and write rates, a sample a second, the last hour
  GET  /api/runs       every run of the catalog
  GET  /api/files      ?status=failed|pending&limit=N&after=CURSOR (keyset pages)
  GET  /metrics        Prometheus text format
  POST /api/pause      hold the readers and writers between blocks; /api/resume
  POST /api/stop       as SIGTERM: finish the files in flight, record, exit 143
  POST /api/bwlimit    {"rate": "50M"} or {"rate": "off"}: the cap, live
"""

from __future__ import annotations

import asyncio
import hmac
import json
import sqlite3
import time

from aiohttp import web

from .catalog import _connect, from_db
from .config import check_rate
from .dashboard import PAGE
from .errors import UsageError
from .metrics import exposition
from .web import MAX_BODY, is_loopback

routes = web.RouteTableDef()


def make_app(server) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY, middlewares=[_guard])
    app["server"] = server
    app.add_routes(routes)
    return app


@web.middleware
async def _guard(request: web.Request, handler):
    """The security model of web.py's docstring, before any handler runs."""
    server = _server(request)
    if server.token is None and not server.own_host(request.headers.get("Host", "")):
        return _error(421, "without a token, this server answers to 127.0.0.1, "
                           "localhost or [::1] and its port only")
    if request.method == "POST" and request.content_type != "application/json":
        # a browser page elsewhere can send text/plain or a form without asking;
        # application/json needs a preflight, which gets no CORS answer
        return _error(415, "POST bodies are application/json")
    if server.token is not None and request.path != "/":
        given = request.headers.get("Authorization", "")
        if not given.startswith("Bearer "):
            return _error(401, "missing Authorization: Bearer <token>",
                          {"WWW-Authenticate": "Bearer"})
        if not hmac.compare_digest(given[7:].strip().encode(), server.token.encode()):
            return _error(403, "wrong token")
    elif request.method != "GET" and not is_loopback(request.remote or ""):
        return _error(403, "changes are taken from loopback only without a token")
    return await handler(request)


def _error(status: int, message: str, headers: dict | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


def metrics_response(state) -> web.Response:
    body, content_type = exposition(state)
    return web.Response(body=body, headers={"Content-Type": content_type})


def as_json(data) -> web.Response:
    return web.Response(text=json.dumps(data), content_type="application/json")
ROWS = 1000             # the most rows one /api/files answer carries


def _server(request: web.Request):
    return request.app["server"]


@routes.get("/")
async def dashboard(request: web.Request) -> web.Response:
    return web.Response(text=PAGE, content_type="text/html", headers={
        "Cache-Control": "no-store", "X-Frame-Options": "DENY",
        "Content-Security-Policy": "default-src 'self'; script-src 'unsafe-inline'; "
                                   "style-src 'unsafe-inline'"})


@routes.get("/health")
async def health(request: web.Request) -> web.Response:
    server = _server(request)
    state = server.state
    stalled = time.time() - state.last_progress > server.control.stall
    busy = state.phase in ("scanning", "copying")     # paused on purpose: not stalled
    ok = not state.waiting and state.phase != "waiting" and not (busy and stalled)
    return web.json_response({"state": state.phase, "last_progress": state.snapshot()[
        "last_progress"], "waiting": state.waiting or None}, status=200 if ok else 503)


@routes.get("/api/status")
async def status(request: web.Request) -> web.Response:
    return as_json(_server(request).state.snapshot())


@routes.get("/api/history")
async def history(request: web.Request) -> web.Response:
    return as_json([{"t": t, "read": r, "written": w}
                    for t, r, w in _server(request).state.rates()])


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    return metrics_response(_server(request).state)


@routes.get("/api/runs")
async def runs(request: web.Request) -> web.Response:
    return as_json(await asyncio.to_thread(_read, _server(request).catalog, _runs))


@routes.get("/api/files")
async def files(request: web.Request) -> web.Response:
    which = request.query.get("status", "failed")
    if which not in ("failed", "pending"):
        return web.json_response({"error": "status is failed or pending"}, status=400)
    try:
        limit = int(request.query.get("limit", "100"))
        after = bytes.fromhex(request.query.get("after", "")) or None
    except ValueError:
        return web.json_response({"error": "limit is a number, after a cursor"},
                                 status=400)
    if not 1 <= limit <= ROWS:
        return web.json_response({"error": f"limit is 1 to {ROWS}"}, status=400)
    rows = await asyncio.to_thread(_read, _server(request).catalog,
                                   lambda c: _files(c, which, limit, after))
    return as_json(rows)


@routes.post("/api/stop")
async def stop(request: web.Request) -> web.Response:
    _server(request).control.stop()
    return web.json_response({"stopping": True})


@routes.post("/api/pause")
async def pause(request: web.Request) -> web.Response:
    _server(request).control.pause(True)
    return web.json_response({"paused": True})


@routes.post("/api/resume")
async def resume(request: web.Request) -> web.Response:
    _server(request).control.pause(False)
    return web.json_response({"paused": False})


@routes.post("/api/bwlimit")
async def bwlimit(request: web.Request) -> web.Response:
    try:
        body = await request.json()
        text = str(body["rate"])
        rate = 0 if text.strip().lower() == "off" else check_rate(text)
    except (ValueError, KeyError, TypeError, UsageError) as e:   # JSON, UTF-8, range
        return web.json_response({"error": f"expected {{\"rate\": \"50M\"}} or "
                                           f"{{\"rate\": \"off\"}} ({e})"}, status=400)
    _server(request).control.set_rate(rate)
    return web.json_response({"bwlimit_bytes_per_second": rate or None})


def _read(catalog: str, query):
    conn = _connect(catalog, readonly=True)
    try:
        return query(conn)
    except sqlite3.Error as e:
        raise web.HTTPServiceUnavailable(text=json.dumps({"error": str(e)}),
                                         content_type="application/json") from None
    finally:
        conn.close()


def _runs(conn: sqlite3.Connection) -> list[dict]:
    names = ("id", "started", "finished", "mode", "status", "files_copied", "bytes_copied",
             "files_failed", "files_deleted")
    return [dict(zip(names, row)) for row in conn.execute(
        f"SELECT {', '.join(names)} FROM runs ORDER BY id")]


def _files(conn: sqlite3.Connection, which: str, limit: int, after: bytes | None) -> dict:
    """A page of rows in src_path order. The cursor is the last path's bytes in hex, so
    names that are not UTF-8 page as well as any. Stored paths are TEXT or BLOB; the two
    sort apart in SQLite (all TEXT first), so the cursor is compared per type."""
    where = "status = 'pending'" + (" AND attempts > 0" if which == "failed" else "")
    rows = []
    for kind in ("text", "blob"):
        cursor = None if after is None else _as(after, kind)
        if after is not None and cursor is None and kind == "text":
            continue        # the cursor is a BLOB path: every TEXT path is behind it
        sql = (f"SELECT src_path, kind, size, attempts, last_error FROM files WHERE {where}"
               f" AND typeof(src_path) = '{kind}'"
               + (" AND src_path > ?" if cursor is not None else "")
               + " ORDER BY src_path LIMIT ?")
        args = ((cursor,) if cursor is not None else ()) + (limit - len(rows),)
        rows += conn.execute(sql, args).fetchall()
        if len(rows) >= limit:
            break
    items = [{"src": from_db(p).decode("utf-8", "surrogateescape"), "kind": k, "size": s,
              "attempts": a, "error": e} for p, k, s, a, e in rows]
    last = from_db(rows[-1][0]).hex() if len(rows) == limit else None
    return {"files": items, "next": last}


def _as(path: bytes, kind: str):
    """The cursor as stored: TEXT if it is valid UTF-8 (to_db's rule), else BLOB."""
    try:
        text = path.decode("utf-8")
    except UnicodeDecodeError:
        return path if kind == "blob" else None
    return text if kind == "text" else None
