"""Settings of the identity service (plain environment variable names)."""

from zizhu_common.settings import ServiceSettings


class Settings(ServiceSettings):
    """Identity service settings."""

    service_name: str = "identity"
    database_url: str = "sqlite+aiosqlite:///var/db/identity.db"
