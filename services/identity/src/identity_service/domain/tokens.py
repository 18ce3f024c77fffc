"""Access-token claims and session rules (signing itself is zizhu_common.crypto)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from identity_service.domain.orgs import Level

ISSUER = "zizhu-identity"


@dataclass(frozen=True)
class AccessClaims:
    """What an access token asserts about its holder."""

    account_id: str
    username: str
    real_name: str
    kind: str
    org_code: str
    org_name: str
    org_path: str
    level: Level
    roles: tuple[str, ...]
    session_id: str
    mfa_verified: bool
    password_change_required: bool
    issued_at: int
    expires_at: int
    jti: str

    def to_dict(self) -> dict[str, Any]:
        """The JSON claims (short, JWT-style names)."""
        return {
            "iss": ISSUER,
            "sub": self.account_id,
            "usr": self.username,
            "name": self.real_name,
            "knd": self.kind,
            "org": self.org_code,
            "orgn": self.org_name,
            "path": self.org_path,
            "lvl": self.level.value,
            "roles": list(self.roles),
            "sid": self.session_id,
            "mfa": self.mfa_verified,
            "pwd": self.password_change_required,
            "iat": self.issued_at,
            "exp": self.expires_at,
            "jti": self.jti,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AccessClaims:
        """Claims from a verified token; KeyError/ValueError when a claim is missing."""
        if data.get("iss") != ISSUER:
            raise ValueError("issuer")
        return cls(
            account_id=str(data["sub"]),
            username=str(data["usr"]),
            real_name=str(data.get("name", "")),
            kind=str(data.get("knd", "person")),
            org_code=str(data["org"]),
            org_name=str(data.get("orgn", "")),
            org_path=str(data["path"]),
            level=Level(data["lvl"]),
            roles=tuple(str(r) for r in data["roles"]),
            session_id=str(data["sid"]),
            mfa_verified=bool(data.get("mfa", False)),
            password_change_required=bool(data.get("pwd", False)),
            issued_at=int(data["iat"]),
            expires_at=int(data["exp"]),
            jti=str(data["jti"]),
        )


def new_id(prefix: str) -> str:
    """A prefixed random id (`A` accounts, `S` sessions, `T` token ids)."""
    return prefix + uuid.uuid4().hex
