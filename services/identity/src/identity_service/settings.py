"""Settings of the identity service (plain environment variable names)."""

from __future__ import annotations

from pydantic import model_validator
from zizhu_common.crypto import PRODUCTION_MIN_ITERATIONS
from zizhu_common.settings import ServiceSettings

from identity_service.domain.audit import MIN_RETENTION_DAYS

TEST_MIN_ITERATIONS = 1_000
_MFA_ROLES = ["admin", "auditor", "audit_admin"]


class Settings(ServiceSettings):
    """Identity service settings."""

    service_name: str = "identity"
    database_url: str = "sqlite+aiosqlite:///var/db/identity.db"

    # The root of this deployment's tree: the nation centrally, a province in a provincial build.
    root_org_code: str = "000000"
    root_org_name: str = "全国"
    root_org_level: str = "national"

    # SM4 field encryption and HMAC-SM3 blind index of ID and phone numbers.
    personal_data_key: str = "dev-secret-key-not-for-production"
    personal_data_key_id: str = "k1"
    # Old encryption secrets still readable, as "kid=secret,kid=secret".
    personal_data_previous_keys: str = ""

    # SM2 token signing key (PKCS#8 PEM). Unset in dev/test: generated once and kept in the file.
    token_signing_key: str = ""
    token_key_file: str = "var/identity/token_signing_key.pem"
    # Public keys (PEM) of previous signing keys whose tokens are still accepted.
    token_previous_public_keys: list[str] = []
    access_token_ttl_s: int = 900
    refresh_token_ttl_s: int = 12 * 3600

    password_iterations: int = PRODUCTION_MIN_ITERATIONS
    password_min_length: int = 8
    password_min_classes: int = 3
    password_history: int = 5
    password_max_age_days: int = 90
    lockout_max_failures: int = 5
    lockout_minutes: int = 30
    # Roles that must pass TOTP, per level (MFA_REQUIRED_ROLES='{"school": ["admin"]}').
    mfa_required_roles: dict[str, list[str]] = {
        level: list(_MFA_ROLES) for level in ("national", "province", "city", "county", "school")
    }
    totp_issuer: str = "学生资助管理信息系统"

    # Producers whose "<producer>.audit.recorded" events are stored in the audit log.
    audit_sources: list[str] = ["gateway", "roster", "aid", "funding", "reconcile"]
    audit_retention_days: int = MIN_RETENTION_DAYS
    audit_purge_interval_s: float = 24 * 3600

    @model_validator(mode="after")
    def _check_identity_settings(self) -> Settings:
        floor = TEST_MIN_ITERATIONS if self.zizhu_env == "test" else PRODUCTION_MIN_ITERATIONS
        if self.password_iterations < floor:
            raise ValueError(f"PASSWORD_ITERATIONS must be at least {floor}")
        if self.audit_retention_days < MIN_RETENTION_DAYS:
            raise ValueError(f"AUDIT_RETENTION_DAYS must be at least {MIN_RETENTION_DAYS}")
        if self.zizhu_env not in ("dev", "test") and not self.token_signing_key.strip():
            raise ValueError(f"TOKEN_SIGNING_KEY is required when ZIZHU_ENV={self.zizhu_env}")
        return self

    @classmethod
    def secret_field_names(cls) -> tuple[str, ...]:
        """Fields that must hold real secrets outside development."""
        return ("secret_key", "personal_data_key")
