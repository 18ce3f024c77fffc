"""roster service."""
