"""Settings of the funding service (plain environment variable names)."""

from zizhu_common.settings import ServiceSettings


class Settings(ServiceSettings):
    """Funding service settings."""

    service_name: str = "funding"
    database_url: str = "sqlite+aiosqlite:///var/db/funding.db"
