"""reconcile service."""
