"""Reconcile's domain: periods, the 13 groups, the reason dictionary, the rule catalogue, scope
roll-ups. Pure Python: no database, gRPC or NATS."""
