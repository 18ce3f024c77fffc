"""funding service."""
