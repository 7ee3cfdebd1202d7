"""Tests of the routes the Rust api forwards to, and of the request log."""

import logging
import re

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.main import RequestLogMiddleware
from app.settings import Settings

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_hello_python_answers_in_json(client: TestClient) -> None:
    response = client.get("/hello/python")

    assert response.status_code == 200
    assert response.json() == {"message": "Hello from Python", "language": "python"}


def test_healthz_reports_ok(client: TestClient) -> None:
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_unknown_path_is_a_404_the_api_passes_on(client: TestClient) -> None:
    response = client.get("/no/such/route")

    assert response.status_code == 404


def test_each_request_is_logged_once_with_its_request_id(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="app.requests"):
        client.get("/hello/python", headers={"x-request-id": "req-123"})

    lines = [r.getMessage() for r in caplog.records if r.name == "app.requests"]
    assert len(lines) == 1
    assert re.fullmatch(
        r"method=GET path=/hello/python status=200 duration_ms=[0-9]+\.[0-9] "
        r"request_id=req-123 traceparent=-",
        lines[0],
    )


def test_request_log_records_the_traceparent_after_the_request_id(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="app.requests"):
        client.get("/hello/python", headers={"x-request-id": "req-1", "traceparent": TRACEPARENT})

    [line] = [r.getMessage() for r in caplog.records if r.name == "app.requests"]
    assert line.endswith(f" request_id=req-1 traceparent={TRACEPARENT}")


def test_request_log_records_the_status_actually_sent(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="app.requests"):
        client.post("/hello/python", headers={"x-request-id": "req-405"})

    [line] = [r.getMessage() for r in caplog.records if r.name == "app.requests"]
    assert "method=POST path=/hello/python status=405 " in line
    assert line.endswith(" request_id=req-405 traceparent=-")


def test_request_without_request_id_is_logged_with_a_dash(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="app.requests"):
        client.get("/hello/python")

    [line] = [r.getMessage() for r in caplog.records if r.name == "app.requests"]
    assert line.endswith(" request_id=- traceparent=-")


def test_health_probes_are_logged_only_at_debug(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="app.requests"):
        client.get("/healthz")
    assert [r for r in caplog.records if r.name == "app.requests"] == []

    with caplog.at_level(logging.DEBUG, logger="app.requests"):
        client.get("/healthz")
    [record] = [r for r in caplog.records if r.name == "app.requests"]
    assert record.levelno == logging.DEBUG
    assert "path=/healthz status=200 " in record.getMessage()


def test_request_that_raises_is_logged_as_a_500(caplog: pytest.LogCaptureFixture) -> None:
    failing = FastAPI()
    failing.add_middleware(RequestLogMiddleware)

    @failing.get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    with caplog.at_level(logging.INFO, logger="app.requests"):
        response = TestClient(failing, raise_server_exceptions=False).get(
            "/boom", headers={"x-request-id": "req-500"}
        )

    assert response.status_code == 500
    [line] = [r.getMessage() for r in caplog.records if r.name == "app.requests"]
    assert "method=GET path=/boom status=500 " in line
    assert line.endswith(" request_id=req-500 traceparent=-")


@pytest.mark.parametrize("environ", [{}, {"PYTHON_LOG_LEVEL": ""}])
def test_settings_default_to_info_logging(environ: dict[str, str]) -> None:
    assert Settings.from_env(environ) == Settings(log_level="INFO")


def test_settings_read_the_log_level_from_the_environment() -> None:
    assert Settings.from_env({"PYTHON_LOG_LEVEL": " debug "}).log_level == "DEBUG"


@pytest.mark.parametrize("level", ["verbose", "notset"])
def test_settings_reject_an_unknown_log_level(level: str) -> None:
    with pytest.raises(ValueError, match="PYTHON_LOG_LEVEL"):
        Settings.from_env({"PYTHON_LOG_LEVEL": level})
