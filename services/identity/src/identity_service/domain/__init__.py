"""Domain rules of the identity service: no gRPC, SQL or NATS here."""
