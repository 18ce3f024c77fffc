"""Gateway settings (plain environment variable names)."""

from zizhu_common.settings import ServiceSettings


class Settings(ServiceSettings):
    """Where the gateway listens and where the five services are."""

    service_name: str = "gateway"
    http_host: str = "0.0.0.0"
    http_port: int = 8000
    identity_addr: str = "127.0.0.1:50051"
    roster_addr: str = "127.0.0.1:50052"
    aid_addr: str = "127.0.0.1:50053"
    funding_addr: str = "127.0.0.1:50054"
    reconcile_addr: str = "127.0.0.1:50055"
    rpc_deadline_s: float = 10.0
    health_deadline_s: float = 2.0
