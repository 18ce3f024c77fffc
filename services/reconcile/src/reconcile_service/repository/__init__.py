"""Reconcile's queries: the event-fed read copy, the set-based comparison and verification, and
the entries, reasons, findings and runs it keeps."""
