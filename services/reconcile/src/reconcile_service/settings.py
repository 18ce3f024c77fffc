"""Settings of the reconcile service (plain environment variable names)."""

from zizhu_common.settings import ServiceSettings


class Settings(ServiceSettings):
    """Reconcile service settings."""

    service_name: str = "reconcile"
    database_url: str = "sqlite+aiosqlite:///var/db/reconcile.db"
