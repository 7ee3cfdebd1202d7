"""The service describes every operation in `/openapi.json`."""

EXPECTED_OPERATIONS = {
    ("get", "/books"),
    ("post", "/books"),
    ("get", "/books/{book_id}"),
    ("put", "/books/{book_id}"),
    ("delete", "/books/{book_id}"),
    ("get", "/isbn/{isbn}"),
    ("get", "/shipping/quote"),
}


def test_openapi_lists_every_operation(client):
    response = client.get("/openapi.json")

    assert response.status_code == 200
    document = response.json()
    assert document["info"]["title"] == "Bookshop"
    operations = {(method, path) for path, item in document["paths"].items() for method in item}
    assert operations == EXPECTED_OPERATIONS
