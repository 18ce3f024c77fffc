"""Gateway settings (plain environment variable names)."""

from pydantic import Field
from zizhu_common.settings import ServiceSettings


class Settings(ServiceSettings):
    """Where the gateway listens, where the five services are, and its security limits."""

    service_name: str = "gateway"
    http_host: str = "0.0.0.0"
    http_port: int = 8000
    # Worker processes accepting on the one listening socket (each with its own caches and
    # connections); 1 serves in this process.
    http_workers: int = Field(default=1, ge=1, le=64)
    identity_addr: str = "127.0.0.1:50051"
    roster_addr: str = "127.0.0.1:50052"
    aid_addr: str = "127.0.0.1:50053"
    funding_addr: str = "127.0.0.1:50054"
    reconcile_addr: str = "127.0.0.1:50055"
    rpc_deadline_s: float = 10.0
    health_deadline_s: float = 2.0

    # Tokens: SM2 public keys are fetched from identity at start-up and refreshed on an unknown kid.
    token_cache_size: int = 50_000
    token_leeway_s: int = 5
    public_key_refresh_min_interval_s: float = 10.0

    # Rate limits (fixed windows in Redis); 0 disables a limit.
    rate_limit_window_s: int = 60
    rate_limit_per_account: int = 1200
    rate_limit_per_ip: int = 3000
    login_limit_per_ip: int = 30
    login_limit_window_s: int = 300
    # Peers whose X-Forwarded-For is trusted for the client IP (ingress controllers).
    trusted_proxies: list[str] = Field(default_factory=list)

    # Idempotency-Key on mutating POSTs.
    idempotency_ttl_s: int = 24 * 3600
    idempotency_lock_s: int = 120

    # Request bodies: JSON requests and file uploads (multipart).
    max_json_bytes: int = 1024 * 1024
    max_upload_bytes: int = 20 * 1024 * 1024

    # Audit events: bounded in-memory queue in front of JetStream.
    # Local spool (a directory per pod, e.g. an emptyDir) that keeps unpublished audit events
    # across a worker's death; empty keeps them in memory only.
    audit_spool_dir: str = ""
    audit_queue_size: int = 10_000
    audit_publish_timeout_s: float = 5.0
