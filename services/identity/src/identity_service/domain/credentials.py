"""Credentials: password policy, lockout, TOTP (pure rules; hashing is PBKDF2-HMAC-SM3)."""

from __future__ import annotations

import hmac
import secrets
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
from zizhu_common.errors import InvalidArgument

from identity_service.domain.orgs import Level


@dataclass(frozen=True)
class PasswordPolicy:
    """≥ 8 characters of 3 classes, not one of the last 5, expires after 90 days."""

    min_length: int = 8
    max_length: int = 128
    min_classes: int = 3
    history: int = 5
    max_age_days: int = 90

    def check_strength(self, password: str, *, username: str = "") -> None:
        """Refuse weak passwords with a Chinese reason."""
        if len(password) < self.min_length or len(password) > self.max_length:
            raise InvalidArgument(
                f"密码长度应为{self.min_length}-{self.max_length}位",
                code="PASSWORD_TOO_SHORT",
                field="new_password",
            )
        if password_classes(password) < self.min_classes:
            raise InvalidArgument(
                f"密码须包含大写字母、小写字母、数字、特殊字符中的至少{self.min_classes}类",
                code="PASSWORD_TOO_WEAK",
                field="new_password",
            )
        if username and username.lower() in password.lower():
            raise InvalidArgument(
                "密码不能包含登录名", code="PASSWORD_CONTAINS_USERNAME", field="new_password"
            )

    def expires_at(self, changed_at: datetime) -> datetime:
        """When a password set at changed_at must be changed."""
        return changed_at + timedelta(days=self.max_age_days)


def password_classes(password: str) -> int:
    """How many of lower, upper, digit, other the password uses."""
    return sum(
        (
            any(c.islower() for c in password),
            any(c.isupper() for c in password),
            any(c.isdigit() for c in password),
            any(not c.isalnum() for c in password),
        )
    )


def generate_temporary_password(length: int = 14) -> str:
    """A random password with all four classes (shown once, changed at first login)."""
    alphabet = string.ascii_letters + string.digits + "@#%+=!"
    while True:
        candidate = "".join(secrets.choice(alphabet) for _ in range(length))
        if password_classes(candidate) == 4:
            return candidate


@dataclass(frozen=True)
class LockoutPolicy:
    """Lock after 5 consecutive failures for 30 minutes."""

    max_failures: int = 5
    lock_minutes: int = 30

    def after_failure(self, failures: int, now: datetime) -> tuple[int, datetime | None]:
        """(new failure count, locked_until or None) after one more failure."""
        count = failures + 1
        if count >= self.max_failures:
            return count, now + timedelta(minutes=self.lock_minutes)
        return count, None


TOTP_STEP_S = 30


def totp_step(secret: str, code: str, now: datetime, *, last_step: int = 0) -> int | None:
    """The time step a 6-digit code matches (±1 step of drift), or None; a step at or before
    last_step is refused so that a code cannot be replayed."""
    code = (code or "").strip()
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    current = int(now.timestamp()) // TOTP_STEP_S
    for step in (current - 1, current, current + 1):
        if step > last_step and hmac.compare_digest(totp.at(step * TOTP_STEP_S), code):
            return step
    return None


def new_totp_secret() -> str:
    """A fresh base32 TOTP secret (160 bits)."""
    return pyotp.random_base32(32)


def provisioning_uri(secret: str, *, username: str, issuer: str) -> str:
    """otpauth:// URI for authenticator apps."""
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=issuer)


def mfa_required(level: Level, roles: Sequence[str], policy: Mapping[str, Sequence[str]]) -> bool:
    """True when the account's level and roles require a TOTP second factor."""
    required = set(policy.get(level.value, ()))
    return bool(required & set(roles))
