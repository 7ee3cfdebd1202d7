"""Shared fixtures: an HTTP client for the running service at `BASE_URL`.

The suite only talks HTTP, so it runs against any running copy of the service:
`BASE_URL=http://127.0.0.1:8000 pytest`. The service keeps its state between runs, so every
test creates its own books, with unique titles and authors, and never counts the others.
"""

import json
import os
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

BASE_URL = os.environ.get("BASE_URL", "http://127.0.0.1:8000")


@pytest.fixture(scope="session")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(base_url=BASE_URL, timeout=10.0) as client:
        yield client


@pytest.fixture
def unique() -> str:
    """A short string no other test (or earlier run) uses."""
    return uuid.uuid4().hex[:12]


def compact_json(document: Any) -> bytes:
    """The exact bytes the service sends for `document`: compact, key order kept, UTF-8."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def assert_json(response: httpx.Response, status: int, document: Any) -> None:
    """The response has this status, a JSON content type and exactly this body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.content == compact_json(document)
