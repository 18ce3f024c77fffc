"""Zizhu service defaults: settings, logging, db, gRPC, NATS, outbox, Redis (no domain code)."""
