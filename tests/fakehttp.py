"""A local HTTP server for download tests: static files with Range support, cut-offs, pages."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class Route:
    """What the server answers for one path (query ignored unless ``handler`` looks at it)."""

    body: bytes = b""
    status: int = 200
    content_type: str = "application/octet-stream"
    ranges: bool = True  # honour Range requests with 206
    cut_at: int | None = None  # close the connection after this many body bytes, once
    headers: dict[str, str] = field(default_factory=dict)
    handler: Callable[[Request], Route] | None = None  # computes the answer from the request


@dataclass(frozen=True)
class Request:
    """A request the server received."""

    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]


class FakeServer:
    """Serves ``routes`` on 127.0.0.1 in a thread; ``requests`` records what came in."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[Request] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output quiet
                pass

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                request = Request(parts.path, parse_qs(parts.query), {k.lower(): v for k, v in self.headers.items()})
                server.requests.append(request)
                route = server.routes.get(parts.path)
                if route is None:
                    self.send_error(404, "Not Found")
                    return
                if route.handler is not None:
                    route = route.handler(request)
                server._answer(self, route, request)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def _answer(self, h: BaseHTTPRequestHandler, route: Route, request: Request) -> None:
        body, status, start = route.body, route.status, 0
        m = re.match(r"bytes=(\d+)-$", request.headers.get("range", ""))
        if route.ranges and m and status == 200:
            start = int(m.group(1))
            if start >= len(body):
                h.send_response(416)
                h.send_header("Content-Range", f"bytes */{len(body)}")
                h.send_header("Content-Length", "0")
                h.end_headers()
                return
            status = 206
        h.send_response(status)
        h.send_header("Content-Type", route.content_type)
        h.send_header("Content-Length", str(len(body) - start))
        if status == 206:
            h.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        for k, v in route.headers.items():
            h.send_header(k, v)
        h.end_headers()
        payload = body[start:]
        if route.cut_at is not None:
            payload = payload[: route.cut_at]
            route.cut_at = None  # the next request gets everything
            h.wfile.write(payload)
            h.wfile.flush()
            h.close_connection = True
            return
        h.wfile.write(payload)


@contextmanager
def serve() -> Iterator[FakeServer]:
    """A running FakeServer, shut down on exit."""
    server = FakeServer()
    server.thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
