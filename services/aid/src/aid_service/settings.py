"""Settings of the aid service (plain environment variable names)."""

from zizhu_common.settings import ServiceSettings


class Settings(ServiceSettings):
    """Aid service settings."""

    service_name: str = "aid"
    database_url: str = "sqlite+aiosqlite:///var/db/aid.db"
