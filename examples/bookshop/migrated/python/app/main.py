"""The Bookshop HTTP service: the book catalogue, ISBN checks and shipping quotes.

Run it with `uvicorn app.main:app --port 8000`. The catalogue lives in memory.
"""

from typing import Annotated

from fastapi import FastAPI, HTTPException, Path, Query, Request, Response, status
from fastapi.responses import JSONResponse

from app import shipping
from app.isbn import to_isbn13
from app.store import Book, BookIn, BookStore

app = FastAPI(
    title="Bookshop",
    version="1.4.2",
    description="Book catalogue, ISBN checks and shipping quotes.",
)
store = BookStore()

BOOK_NOT_FOUND = "Book not found"
BookId = Annotated[int, Path(ge=1, description="The book's id")]


@app.get("/books", response_model=list[Book], tags=["books"])
def list_books(
    response: Response,
    author: Annotated[str | None, Query(description="Only this author's books")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[Book]:
    """Books by id, one page at a time; `X-Total-Count` says how many match in all."""
    books, total = store.list(author, limit, offset)
    response.headers["X-Total-Count"] = str(total)
    return books


@app.post("/books", response_model=Book, status_code=status.HTTP_201_CREATED, tags=["books"])
def create_book(data: BookIn, response: Response) -> Book:
    book = store.add(data)
    response.headers["Location"] = f"/books/{book.id}"
    return book


@app.get("/books/{book_id}", response_model=Book, tags=["books"])
def get_book(book_id: BookId) -> Book:
    book = store.get(book_id)
    if book is None:
        raise HTTPException(status_code=404, detail=BOOK_NOT_FOUND)
    return book


@app.put("/books/{book_id}", response_model=Book, tags=["books"])
def replace_book(book_id: BookId, data: BookIn) -> Book:
    book = store.replace(book_id, data)
    if book is None:
        raise HTTPException(status_code=404, detail=BOOK_NOT_FOUND)
    return book


@app.delete("/books/{book_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["books"])
def delete_book(book_id: BookId) -> Response:
    if not store.remove(book_id):
        raise HTTPException(status_code=404, detail=BOOK_NOT_FOUND)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@app.get("/isbn/{isbn}", tags=["tools"])
def check_isbn(isbn: str) -> JSONResponse:
    """Whether the path segment is a valid ISBN-10 or ISBN-13; rules in `app/isbn.py`.

    A plain `str` path parameter: any segment is accepted, so FastAPI never answers 422 here.
    """
    isbn13 = to_isbn13(isbn)
    return JSONResponse({"isbn": isbn, "valid": isbn13 is not None, "isbn13": isbn13})


@app.get(
    "/shipping/quote",
    tags=["tools"],
    # The query is read raw (rules and messages in `app/shipping.py`), so it is described here.
    openapi_extra={
        "parameters": [
            {
                "name": "weight_grams",
                "in": "query",
                "required": True,
                "schema": {"type": "integer", "minimum": 1, "maximum": 30000},
            },
            {
                "name": "country",
                "in": "query",
                "required": True,
                "schema": {"type": "string", "pattern": "^[A-Za-z]{2}$"},
            },
        ]
    },
)
def shipping_quote(request: Request) -> JSONResponse:
    """The price of sending a parcel; `400 {"detail": ...}` when the query is not usable."""
    params = request.query_params
    try:
        quote = shipping.quote(params.get("weight_grams"), params.get("country"))
    except shipping.QuoteError as error:
        return JSONResponse({"detail": str(error)}, status_code=400)
    return JSONResponse(quote.as_json())
