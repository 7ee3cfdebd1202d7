"""The FastAPI application: its routes and the request log.

uvicorn serves `app` on loopback or a Unix socket only (see deploy/supervisord.conf); clients
reach it through the Rust api, which forwards every request no native route answers.
"""

import asyncio
import json
import logging
import re
import sys
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import FastAPI, Query, WebSocket, WebSocketDisconnect
from fastapi.responses import StreamingResponse
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.settings import Settings

settings = Settings.from_env()
logger = logging.getLogger("app.requests")
# The api probes /healthz every second (READINESS_INTERVAL_MS): logged at DEBUG only, so the
# probes do not drown the requests that matter.
QUIET_PATHS = frozenset({"/healthz"})


def configure_logging(level: str) -> None:
    """Send the `app` loggers to stdout, which supervisord forwards to its own stdout."""
    app_logger = logging.getLogger("app")
    app_logger.setLevel(level)
    if not app_logger.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        app_logger.addHandler(handler)


class RequestLogMiddleware:
    """Logs one line per HTTP request and one per websocket session.

    The line has the method (`WS` for a websocket), path, status, duration, `x-request-id` and
    the W3C `traceparent` (`-` when absent). The Rust api sets `x-request-id` on every request
    it forwards, so this line can be matched with the api's own log line for the same request.
    A websocket's status is the code of its close, whichever side closed first (the other side
    answers with the same code). A plain ASGI middleware, so streaming responses and websocket
    frames pass through untouched.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return

        started = time.perf_counter()
        websocket = scope["type"] == "websocket"
        # What the client gets if the application raises before it answers: a 500, or for an
        # open websocket the close code uvicorn then sends (1011, internal error).
        status = 500
        accepted = closed = False

        async def receive_and_record_close() -> Message:
            nonlocal status, closed
            message = await receive()
            if message["type"] == "websocket.disconnect" and not closed:
                # 1005: the client's close frame had no code.
                status, closed = message.get("code", 1005), True
            return message

        async def send_and_record_status(message: Message) -> None:
            nonlocal status, accepted, closed
            if message["type"] in ("http.response.start", "websocket.http.response.start"):
                status = message["status"]
            elif message["type"] == "websocket.accept":
                status, accepted = 1011, True
            elif message["type"] == "websocket.close" and not closed:
                # Closing before accepting refuses the handshake: uvicorn answers 403.
                status, closed = (message.get("code", 1000) if accepted else 403), True
            await send(message)

        try:
            await self.app(scope, receive_and_record_close, send_and_record_status)
        finally:
            headers = Headers(scope=scope)
            logger.log(
                logging.DEBUG if scope["path"] in QUIET_PATHS else logging.INFO,
                "method=%s path=%s status=%d duration_ms=%.1f request_id=%s traceparent=%s",
                "WS" if websocket else scope["method"],
                scope["path"],
                status,
                (time.perf_counter() - started) * 1000,
                headers.get("x-request-id", "-"),
                headers.get("traceparent", "-"),
            )


configure_logging(settings.log_level)

# The trailing comma keeps this call expanded whatever the project name's length (ruff).
app = FastAPI(
    title="{{project-name}} python",
    version="0.1.0",
)
app.add_middleware(RequestLogMiddleware)


@app.get("/hello/python")
async def hello_python() -> dict[str, str]:
    """The Python half of the greeting; the Rust api answers GET /hello/rust itself."""
    return {"message": "Hello from Python", "language": "python"}


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    """Probed by the Rust api in the background: its /readyz is 200 only while this answers."""
    return {"status": "ok"}


def requested_close_code(text: str) -> int | None:
    """The code of a `close <code>` frame sent to /ws/echo, if it is one an endpoint may send.

    Those are 1000-1003, 1007-1014 and 3000-4999 (RFC 6455, section 7.4); any other text, such
    as `close 1005`, is an ordinary frame.
    """
    match = re.fullmatch(r"close ([0-9]{4})", text)
    if match is None:
        return None
    code = int(match[1])
    sendable = 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999
    return code if sendable else None


@app.websocket("/ws/echo")
async def ws_echo(websocket: WebSocket) -> None:
    """Sends every frame back as it came: text as text, binary as binary.

    Accepts the first subprotocol the client offers, if any. A text frame `close <code>` (such
    as `close 4001`) makes the server close with that code and the reason `requested`.
    """
    offered = websocket.scope.get("subprotocols") or []
    await websocket.accept(subprotocol=offered[0] if offered else None)
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return  # uvicorn answers the client's close frame with the same code.
            text = message.get("text")
            if text is None:
                await websocket.send_bytes(message.get("bytes") or b"")
            elif (code := requested_close_code(text)) is not None:
                await websocket.close(code=code, reason="requested")
                return
            else:
                await websocket.send_text(text)
    except WebSocketDisconnect:
        return  # The client went away while a frame was being sent back.


@app.get("/events")
async def events(
    count: Annotated[int, Query(ge=1, le=1000, description="How many events to send")] = 3,
    interval_ms: Annotated[int, Query(ge=0, le=10_000, description="Pause between events")] = 500,
) -> StreamingResponse:
    """Server-sent events: the first at once, then one every `interval_ms`, then the end.

    Each event is `id: <n>` and `data: {"n": <n>}`, n counting from 1.
    """

    async def stream() -> AsyncIterator[str]:
        for n in range(1, count + 1):
            if n > 1:
                await asyncio.sleep(interval_ms / 1000)
            data = json.dumps({"n": n})
            yield f"id: {n}\ndata: {data}\n\n"

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache"},
    )
