"""Tests of the long-lived routes: the /ws/echo websocket and the /events stream."""

import logging
import re
import time

import pytest
from fastapi import WebSocketDisconnect
from fastapi.testclient import TestClient

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_websocket_echoes_text_frames_as_text(client: TestClient) -> None:
    with client.websocket_connect("/ws/echo") as ws:
        ws.send_text("hello")
        assert ws.receive() == {"type": "websocket.send", "text": "hello"}
        ws.send_text("")
        assert ws.receive_text() == ""


def test_websocket_echoes_binary_frames_as_binary(client: TestClient) -> None:
    payload = bytes(range(256))
    with client.websocket_connect("/ws/echo") as ws:
        ws.send_bytes(payload)
        assert ws.receive() == {"type": "websocket.send", "bytes": payload}
        ws.send_bytes(b"")
        assert ws.receive_bytes() == b""


def test_websocket_accepts_the_first_subprotocol_offered(client: TestClient) -> None:
    with client.websocket_connect("/ws/echo", subprotocols=["chat.v2", "chat.v1"]) as ws:
        assert ws.accepted_subprotocol == "chat.v2"


def test_websocket_accepts_no_subprotocol_when_none_is_offered(client: TestClient) -> None:
    with client.websocket_connect("/ws/echo") as ws:
        assert ws.accepted_subprotocol is None


def test_websocket_closes_with_the_code_requested(client: TestClient) -> None:
    with client.websocket_connect("/ws/echo") as ws:
        ws.send_text("close 4001")
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()

    assert closed.value.code == 4001
    assert closed.value.reason == "requested"


@pytest.mark.parametrize("text", ["close 1005", "close 2000", "close 40011", "close  4001"])
def test_websocket_echoes_a_close_request_it_cannot_honour(client: TestClient, text: str) -> None:
    with client.websocket_connect("/ws/echo") as ws:
        ws.send_text(text)
        assert ws.receive_text() == text


def test_websocket_session_is_logged_with_the_client_close_code(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    headers = {"x-request-id": "ws-1", "traceparent": TRACEPARENT}
    with (
        caplog.at_level(logging.INFO, logger="app.requests"),
        client.websocket_connect("/ws/echo", headers=headers) as ws,
    ):
        ws.send_text("hi")
        ws.receive_text()
        ws.close(4002)

    [line] = [r.getMessage() for r in caplog.records if r.name == "app.requests"]
    assert re.fullmatch(
        r"method=WS path=/ws/echo status=4002 duration_ms=[0-9]+\.[0-9] "
        rf"request_id=ws-1 traceparent={TRACEPARENT}",
        line,
    )


def test_websocket_session_is_logged_with_the_server_close_code(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.INFO, logger="app.requests"),
        client.websocket_connect("/ws/echo") as ws,
    ):
        ws.send_text("close 4001")
        with pytest.raises(WebSocketDisconnect):
            ws.receive_text()

    [line] = [r.getMessage() for r in caplog.records if r.name == "app.requests"]
    assert line.startswith("method=WS path=/ws/echo status=4001 ")
    assert line.endswith(" request_id=- traceparent=-")


def test_websocket_refused_before_accept_is_logged_as_a_403(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.INFO, logger="app.requests"),
        pytest.raises(WebSocketDisconnect),
        client.websocket_connect("/ws/no-such-route"),
    ):
        pass

    [line] = [r.getMessage() for r in caplog.records if r.name == "app.requests"]
    assert line.startswith("method=WS path=/ws/no-such-route status=403 ")


def test_events_are_a_server_sent_event_stream(client: TestClient) -> None:
    response = client.get("/events", params={"count": 3, "interval_ms": 0})

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    assert response.text == (
        'id: 1\ndata: {"n": 1}\n\nid: 2\ndata: {"n": 2}\n\nid: 3\ndata: {"n": 3}\n\n'
    )


def test_events_default_to_three(client: TestClient) -> None:
    response = client.get("/events", params={"interval_ms": 0})

    assert re.findall(r"^id: ([0-9]+)$", response.text, flags=re.MULTILINE) == ["1", "2", "3"]


def test_events_are_spaced_by_the_interval_but_the_first_is_not_delayed(
    client: TestClient,
) -> None:
    started = time.perf_counter()
    client.get("/events", params={"count": 3, "interval_ms": 100})
    assert time.perf_counter() - started >= 0.2

    # One event with a long interval: sent at once, and no pause after the last event.
    started = time.perf_counter()
    response = client.get("/events", params={"count": 1, "interval_ms": 10_000})
    assert time.perf_counter() - started < 5
    assert response.text == 'id: 1\ndata: {"n": 1}\n\n'


@pytest.mark.parametrize(
    "params",
    [
        {"count": 0},
        {"count": 1001},
        {"count": "many"},
        {"interval_ms": -1},
        {"interval_ms": 10_001},
    ],
)
def test_events_reject_out_of_bounds_queries(
    client: TestClient, params: dict[str, int | str]
) -> None:
    assert client.get("/events", params=params).status_code == 422


def test_events_accept_the_bounds(client: TestClient) -> None:
    response = client.get("/events", params={"count": 1000, "interval_ms": 0})

    assert response.status_code == 200
    assert response.text.count("\n\n") == 1000
    assert response.text.endswith('id: 1000\ndata: {"n": 1000}\n\n')
