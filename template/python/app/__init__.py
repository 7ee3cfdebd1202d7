"""The Python service of the project: FastAPI routes the Rust api forwards to."""
