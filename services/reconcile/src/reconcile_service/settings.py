"""Settings of the reconcile service (plain environment variable names)."""

from zizhu_common.settings import ServiceSettings


class Settings(ServiceSettings):
    """Reconcile service settings."""

    service_name: str = "reconcile"
    database_url: str = "sqlite+aiosqlite:///var/db/reconcile.db"
    # Batches of the event-fed copy (larger batches, fewer commits; on SQLite each batch's
    # random dedup-index inserts touch fewer pages per event).
    consumer_batch_size: int = 5000
    # Batches of aid events (approvals, revocations) applied at once on PostgreSQL, each in its
    # own transaction, so that the database works on one while the next is decoded (their
    # writes commute: see repository/readcopy/funds.py). SQLite always applies one at a time.
    aid_ingest_in_flight: int = 2

    # Keyed SM3 blind index of ID numbers: the same secret and context as roster's, so that an
    # ID number typed here finds the person roster and aid know (cross-service person key).
    personal_data_key: str = "dev-secret-key-not-for-production"
    # As roster's: old secrets "kid=secret,…"; an "index=secret" entry keeps the blind-index key.
    personal_data_previous_keys: str = ""
    id_index_context: str = "person.id_number"

    # The daily comparison at hh:mm Asia/Shanghai, once across replicas (Redis lock + lease).
    daily_run_enabled: bool = True
    daily_run_hour: int = 2
    daily_run_minute: int = 0
    # A replica that starts after the slot (or finds it failed) still runs it within this window.
    daily_catch_up_hours: float = 20.0
    daily_retry_interval_s: float = 60.0
    daily_verification: bool = True
    run_lock_lease_s: float = 60.0
    # A manual run waits at most this long for a running one to finish before giving up.
    run_lock_wait_s: float = 600.0

    @classmethod
    def secret_field_names(cls) -> tuple[str, ...]:
        """Fields that must hold real secrets outside development."""
        return ("secret_key", "personal_data_key")
