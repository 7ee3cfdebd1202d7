"""Bookshop: a small book catalogue with ISBN checks and shipping quotes."""
