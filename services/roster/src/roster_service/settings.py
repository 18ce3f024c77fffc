"""Settings of the roster service (plain environment variable names)."""

from zizhu_common.settings import ServiceSettings


class Settings(ServiceSettings):
    """Roster service settings."""

    service_name: str = "roster"
    database_url: str = "sqlite+aiosqlite:///var/db/roster.db"

    # SM4 field encryption and HMAC-SM3 blind index of ID and phone numbers; the blind index of
    # an ID number is the person key other services receive, so the key is shared with them.
    personal_data_key: str = "dev-secret-key-not-for-production"
    personal_data_key_id: str = "k1"
    # Old encryption secrets still readable, as "kid=secret,kid=secret".
    personal_data_previous_keys: str = ""
    # Roles that may read full ID and phone numbers (each read is audited).
    reveal_roles: list[str] = ["operator", "auditor", "admin"]

    # Imports: upload size, rows per file, how long a dry run stays committable.
    import_max_bytes: int = 60 * 1024 * 1024
    import_max_rows: int = 2_000_000
    import_ttl_s: int = 24 * 3600
    # Rows handled per statement group during a sync (memory vs round trips).
    sync_chunk_rows: int = 5000
    # Worker processes that validate and encrypt the rows of large files (0: in-process), and
    # the file size (rows) from which they are used.
    sync_workers: int = 2
    sync_pool_min_rows: int = 20_000
    # Chunks of a special-group issue at least this long are checked (GB 11643) and
    # blind-indexed in the same worker processes, beside the database work of other chunks.
    issue_pool_min_rows: int = 2_000
    # SQLite page cache (KiB) of the connection running a large import: large enough for the
    # indexes keyed by random blind indexes, small enough that dirty pages spill to the log
    # during the import rather than all at its commit (512 MiB left 3 s of writes to the commit
    # of a million-row sync; 128 MiB: 1.4 s, and no slower meanwhile).
    sqlite_cache_kib: int = 128 * 1024
    # Identity's org events feed the org read copy.
    consume_identity: bool = True

    @classmethod
    def secret_field_names(cls) -> tuple[str, ...]:
        """Fields that must hold real secrets outside development."""
        return ("secret_key", "personal_data_key")
