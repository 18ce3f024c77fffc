"""Settings of the aid service (plain environment variable names)."""

from zizhu_common.settings import ServiceSettings


class Settings(ServiceSettings):
    """Aid service settings."""

    service_name: str = "aid"
    database_url: str = "sqlite+aiosqlite:///var/db/aid.db"
    # roster's gRPC address (entry validation asks it whether students are enrolled).
    roster_addr: str = "127.0.0.1:50052"
    roster_timeout_s: float = 30.0
    # SM4 encryption of bank card numbers at rest; the HMAC-SM3 blind index of ID numbers must
    # use the same secret as roster's (the cross-service person key).
    personal_data_key: str = "dev-secret-key-not-for-production"
    personal_data_key_id: str = "k1"
    # Old encryption secrets still readable, as "kid=secret,kid=secret".
    personal_data_previous_keys: str = ""
    # A staged import (dry run) can be committed for this long.
    import_ttl_s: int = 24 * 3600
    # The deployment's root (the nation; a province in a provincial build).
    root_org_code: str = "000000"

    @classmethod
    def secret_field_names(cls) -> tuple[str, ...]:
        """Fields that must hold real secrets outside development."""
        return ("secret_key", "personal_data_key")
