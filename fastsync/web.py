"""--http: a small HTTP server inside the running copy, for people and monitoring.

It runs its own asyncio loop in one daemon thread (aiohttp), reads the in-memory
RunState (observe.py) and, for the run history and file lists, the catalog on read-only
connections of its own, in a worker thread: a request never blocks the copy, and a slow
client only holds its own connection.

Security model (README, "HTTP API"):
  - on loopback without a token, anyone on this host may read and control the run;
  - with --http-token-file, every request needs `Authorization: Bearer <token>`
    (compared in constant time), and a bind to anything but loopback requires it;
  - without a token, requests that change something (POST) are taken from loopback
    peers only, and every request must name the server as 127.0.0.1, localhost or
    [::1] in its Host header (a page elsewhere that rebinds its name to 127.0.0.1
    cannot read or act);
  - POST bodies must be application/json: a page elsewhere cannot send that without
    a preflight, which gets no CORS answer;
  - at most 64 connections at once, idle ones closed after 5 s: the copy shares the
    process's file descriptors;
  - no CORS headers (a web page elsewhere cannot read the answers), bodies of at most
    4 KiB, no endpoint reads a file of SRC or DST.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import re
import socket
import threading

from .errors import UsageError

log = logging.getLogger(__name__)

DEFAULT_PORT = 8437
MAX_BODY = 4096
MAX_CONNECTIONS = 64


def parse_address(text: str | None) -> tuple[str, int]:
    """`--http` alone: 127.0.0.1 on DEFAULT_PORT; otherwise HOST:PORT, [IPv6]:PORT,
    or :PORT (loopback)."""
    if not text:
        return "127.0.0.1", DEFAULT_PORT
    match = re.fullmatch(r"(?:\[([0-9a-fA-F:.]+)\]|([^:\[\]]*)):([0-9]{1,5})", text.strip())
    if not match or not 0 <= int(match.group(3)) <= 65535:
        raise UsageError(f"--http {text!r} is not HOST:PORT (e.g. 127.0.0.1:{DEFAULT_PORT})")
    host = match.group(1) or match.group(2) or "127.0.0.1"
    return host, int(match.group(3))


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_token(path: str | None, host: str) -> str | None:
    if path is None:
        if not is_loopback(host):
            raise UsageError(f"--http {host}: listening beyond loopback needs "
                             f"--http-token-file (every request must then carry it)")
        return None
    try:
        with open(path, encoding="utf-8") as f:
            token = f.read().strip()
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"--http-token-file {path!r} cannot be read: "
                         f"{getattr(e, 'strerror', None) or e}") from None
    if len(token) < 16:
        raise UsageError(f"--http-token-file {path!r}: the token must be at least 16 "
                         f"characters")
    return token


def bind(host: str, port: int) -> socket.socket:
    """Bound and listening now, before anything is written: a port in use is a usage
    error (status 2), not a surprise after an hours-long scan."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(64)
    except OSError as e:
        what = "is in use" if e.errno == errno.EADDRINUSE else f"cannot be bound: {e.strerror}"
        raise UsageError(f"--http {host}:{port} {what}") from None
    return sock


class Server:
    """The server thread. `control` has stop() and set_rate(bytes_per_second)."""

    def __init__(self, sock: socket.socket, state, catalog: str, token: str | None,
                 control):
        self.sock, self.state, self.catalog = sock, state, catalog
        self.token, self.control = token, control
        self.loop = asyncio.new_event_loop()
        self._runner = None             # aiohttp's AppRunner, made in the thread
        self._up = threading.Event()    # set once the thread serves (or gave up)
        self._thread = threading.Thread(target=self._serve, name="http", daemon=True)

    @property
    def url(self) -> str:
        host, port = self.sock.getsockname()[:2]
        return f"http://{'[' + host + ']' if ':' in host else host}:{port}/"

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        """Stop serving (after the run); waits for a server still starting up."""
        self._up.wait(10)
        if self._runner is not None:
            future = asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self.loop)
            try:
                future.result(5)
            except Exception:   # noqa: BLE001 - closing must not fail the run
                pass
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)

    def _serve(self) -> None:
        # aiohttp (and prometheus-client) are imported here, in the server's thread,
        # while the run goes on: their import is most of what the server costs.
        asyncio.set_event_loop(self.loop)
        from aiohttp import web
        from .api import make_app
        # Idle keep-alive connections are closed after a few seconds, and no more than
        # MAX_CONNECTIONS are served at once: the copy shares this process's file
        # descriptors, and a client holding sockets open must not starve it.
        try:
            self._runner = web.AppRunner(make_app(self), access_log=None,
                                         keepalive_timeout=5)
            self.loop.run_until_complete(self._runner.setup())
            self.loop.run_until_complete(self.loop.create_server(self._protocol,
                                                                 sock=self.sock))
        except Exception as e:      # noqa: BLE001 - the copy goes on without its server
            log.error("the HTTP server could not start: %s", e)
            return
        finally:
            self._up.set()
        self.loop.run_forever()

    def _protocol(self) -> asyncio.BaseProtocol:
        server = self._runner.server
        if len(server.connections) >= MAX_CONNECTIONS:
            return _Refuse()
        return server()

    def own_host(self, host: str) -> bool:
        """Is a request addressed to this server by a loopback name? A page from
        elsewhere that rebinds its own name to 127.0.0.1 still sends its own name."""
        port = self.sock.getsockname()[1]
        return host in {f"{name}:{port}" for name in ("127.0.0.1", "localhost", "[::1]")}


class _Refuse(asyncio.Protocol):
    """A connection beyond MAX_CONNECTIONS: closed at once."""

    def connection_made(self, transport) -> None:
        transport.close()
