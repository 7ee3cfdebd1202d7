"""The book catalogue: create, read, list with filters and pages, replace, delete."""

from typing import Any

import httpx
import pytest


def new_book(client: httpx.Client, **fields: Any) -> dict[str, Any]:
    response = client.post("/books", json=fields)
    assert response.status_code == 201, response.text
    return response.json()


def test_create_answers_201_with_the_book_and_its_location(client, unique):
    data = {"title": f"Dune {unique}", "author": "Frank Herbert", "year": 1965, "price_cents": 999}

    response = client.post("/books", json=data)

    assert response.status_code == 201
    book = response.json()
    assert book == {**data, "id": book["id"]}
    assert isinstance(book["id"], int)
    assert response.headers["location"] == f"/books/{book['id']}"


def test_year_is_optional(client, unique):
    book = new_book(client, title=f"Anonymous {unique}", author="Unknown", price_cents=0)
    assert book["year"] is None


@pytest.mark.parametrize(
    "body",
    [
        {"author": "No Title", "price_cents": 100},
        {"title": "", "author": "Empty Title", "price_cents": 100},
        {"title": "Negative", "author": "Someone", "price_cents": -1},
        {"title": "Bad year", "author": "Someone", "price_cents": 1, "year": "soon"},
    ],
)
def test_create_rejects_an_invalid_book_with_422(client, body):
    response = client.post("/books", json=body)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/json")
    assert isinstance(response.json()["detail"], list)


def test_get_answers_the_book(client, unique):
    book = new_book(client, title=f"Emma {unique}", author="Jane Austen", price_cents=550)

    response = client.get(f"/books/{book['id']}")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == book


def test_get_an_unknown_book_answers_404(client, unique):
    book = new_book(client, title=f"Gone {unique}", author="Nobody", price_cents=1)
    client.delete(f"/books/{book['id']}")

    response = client.get(f"/books/{book['id']}")

    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"detail": "Book not found"}


@pytest.mark.parametrize("book_id", ["abc", "0", "1.5"])
def test_get_with_an_invalid_id_answers_422(client, book_id):
    assert client.get(f"/books/{book_id}").status_code == 422


def test_list_filters_by_author_case_insensitively_in_id_order(client, unique):
    author = f"Author {unique}"
    ours = [
        new_book(client, title=f"Vol {n} {unique}", author=author, price_cents=n) for n in (1, 2, 3)
    ]
    new_book(client, title=f"Other {unique}", author=f"Someone else {unique}", price_cents=4)

    response = client.get("/books", params={"author": author.upper()})

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == ours
    assert response.headers["x-total-count"] == "3"


def test_list_pages_with_limit_and_offset(client, unique):
    author = f"Pager {unique}"
    ours = [
        new_book(client, title=f"Part {n} {unique}", author=author, price_cents=n) for n in range(5)
    ]

    page = client.get("/books", params={"author": author, "limit": 2, "offset": 1})
    past_the_end = client.get("/books", params={"author": author, "limit": 2, "offset": 5})

    assert page.json() == ours[1:3]
    assert page.headers["x-total-count"] == "5"
    assert past_the_end.json() == []
    assert past_the_end.headers["x-total-count"] == "5"


def test_list_without_filter_answers_one_page_of_all_books(client, unique):
    new_book(client, title=f"Any {unique}", author="Anyone", price_cents=1)

    response = client.get("/books", params={"limit": 3})

    assert response.status_code == 200
    books = response.json()
    assert 1 <= len(books) <= 3
    assert [b["id"] for b in books] == sorted(b["id"] for b in books)
    assert int(response.headers["x-total-count"]) >= 1


def test_list_with_an_unknown_author_is_empty(client, unique):
    response = client.get("/books", params={"author": f"Nobody {unique}"})
    assert response.json() == []
    assert response.headers["x-total-count"] == "0"


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 101}, {"offset": -1}, {"limit": "x"}])
def test_list_rejects_bad_paging_with_422(client, params):
    assert client.get("/books", params=params).status_code == 422


def test_put_replaces_the_book(client, unique):
    book = new_book(client, title=f"Draft {unique}", author="Writer", year=2001, price_cents=100)
    data = {"title": f"Final {unique}", "author": "Writer", "price_cents": 1200}

    response = client.put(f"/books/{book['id']}", json=data)

    assert response.status_code == 200
    assert response.json() == {**data, "year": None, "id": book["id"]}
    assert client.get(f"/books/{book['id']}").json() == response.json()


def test_put_an_unknown_book_answers_404(client, unique):
    book = new_book(client, title=f"Short-lived {unique}", author="Writer", price_cents=1)
    client.delete(f"/books/{book['id']}")

    response = client.put(
        f"/books/{book['id']}", json={"title": "X", "author": "Y", "price_cents": 1}
    )

    assert response.status_code == 404
    assert response.json() == {"detail": "Book not found"}


def test_put_rejects_an_invalid_book_with_422(client, unique):
    book = new_book(client, title=f"Kept {unique}", author="Writer", price_cents=1)

    response = client.put(f"/books/{book['id']}", json={"title": "No author", "price_cents": 1})

    assert response.status_code == 422
    assert client.get(f"/books/{book['id']}").json() == book


def test_delete_answers_204_then_the_book_is_gone(client, unique):
    book = new_book(client, title=f"Doomed {unique}", author="Writer", price_cents=1)

    response = client.delete(f"/books/{book['id']}")

    assert response.status_code == 204
    assert response.content == b""
    assert client.get(f"/books/{book['id']}").status_code == 404
    again = client.delete(f"/books/{book['id']}")
    assert again.status_code == 404
    assert again.json() == {"detail": "Book not found"}
