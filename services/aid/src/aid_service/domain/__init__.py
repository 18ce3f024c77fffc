"""The aid domain: projects, periods, windows, records and their audit chain (no I/O)."""
