"""The book catalogue, kept in memory: it starts empty at each start of the service."""

import threading
from typing import Annotated

from pydantic import BaseModel, Field

Title = Annotated[str, Field(min_length=1, max_length=200)]
Author = Annotated[str, Field(min_length=1, max_length=200)]
Year = Annotated[int | None, Field(ge=0, le=2100)]
PriceCents = Annotated[int, Field(ge=0)]


class BookIn(BaseModel):
    """A book as clients send it, to create one or replace one."""

    title: Title
    author: Author
    year: Year = None
    price_cents: PriceCents


class Book(BaseModel):
    """A book in the catalogue."""

    id: int
    title: Title
    author: Author
    year: Year
    price_cents: PriceCents


class BookStore:
    """Books by id; ids count up from 1 and are never reused. Safe to share between threads."""

    def __init__(self) -> None:
        self._books: dict[int, Book] = {}
        self._next_id = 1
        self._lock = threading.Lock()

    def list(self, author: str | None, limit: int, offset: int) -> tuple[list[Book], int]:
        """One page of books by id, optionally only one author's (case-insensitive), and
        how many books match in all."""
        with self._lock:
            books = list(self._books.values())
        if author is not None:
            wanted = author.casefold()
            books = [b for b in books if b.author.casefold() == wanted]
        return books[offset : offset + limit], len(books)

    def get(self, book_id: int) -> Book | None:
        with self._lock:
            return self._books.get(book_id)

    def add(self, data: BookIn) -> Book:
        with self._lock:
            book = Book(id=self._next_id, **data.model_dump())
            self._books[book.id] = book
            self._next_id += 1
            return book

    def replace(self, book_id: int, data: BookIn) -> Book | None:
        with self._lock:
            if book_id not in self._books:
                return None
            book = Book(id=book_id, **data.model_dump())
            self._books[book_id] = book
            return book

    def remove(self, book_id: int) -> bool:
        with self._lock:
            return self._books.pop(book_id, None) is not None
