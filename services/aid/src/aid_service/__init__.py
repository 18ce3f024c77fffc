"""aid service."""
