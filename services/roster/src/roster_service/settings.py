"""Settings of the roster service (plain environment variable names)."""

from zizhu_common.settings import ServiceSettings


class Settings(ServiceSettings):
    """Roster service settings."""

    service_name: str = "roster"
    database_url: str = "sqlite+aiosqlite:///var/db/roster.db"
