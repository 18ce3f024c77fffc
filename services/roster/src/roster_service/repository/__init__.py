"""Queries and writes of the roster's tables, returning rows and domain values."""
