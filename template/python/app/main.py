"""The FastAPI application: its routes and the request log.

uvicorn serves `app` on loopback or a Unix socket only (see deploy/supervisord.conf); clients
reach it through the Rust api, which forwards every request no native route answers.
"""

import logging
import sys
import time

from fastapi import FastAPI
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
    """Logs one line per HTTP request: method, path, status, duration and `x-request-id`.

    The Rust api sets `x-request-id` on every request it forwards, so this line can be matched
    with the api's own log line for the same request. A plain ASGI middleware, so streaming
    responses pass through untouched.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        started = time.perf_counter()
        # What the client gets if the application raises before it starts a response.
        status = 500

        async def send_and_record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record_status)
        finally:
            logger.log(
                logging.DEBUG if scope["path"] in QUIET_PATHS else logging.INFO,
                "method=%s path=%s status=%d duration_ms=%.1f request_id=%s",
                scope["method"],
                scope["path"],
                status,
                (time.perf_counter() - started) * 1000,
                Headers(scope=scope).get("x-request-id", "-"),
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
