"""Every Redis key the gateway reads or writes (Redis holds nothing that cannot be lost).

Revocation keys are WRITTEN BY IDENTITY (identity_service.revocation) and only read here; the two
lists must stay the same:

| key                                   | value                          | TTL                      |
|---------------------------------------|--------------------------------|--------------------------|
| `identity:revoked:jti:<jti>`          | any (e.g. "1")                 | until the token's exp    |
| `identity:revoked:sid:<session_id>`   | any                            | access-token lifetime    |
| `identity:revoked-before:<account>`   | unix seconds (int): tokens with `iat` < value are revoked | access-token lifetime |

A logout revokes its session (`sid`) and the current `jti`; "log out everywhere", a lock, a
password change or reset and a retirement write `account` with `ceil(now)`.
"""

from __future__ import annotations

REVOKED_JTI = "identity:revoked:jti:{}"
REVOKED_SESSION = "identity:revoked:sid:{}"
REVOKED_ACCOUNT = "identity:revoked-before:{}"

# Gateway-owned keys.
RATE_ACCOUNT = "gateway:rl:acct:{}:{}"  # account id, window number
RATE_IP = "gateway:rl:ip:{}:{}"  # client ip, window number
RATE_LOGIN_IP = "gateway:rl:login:{}:{}"  # client ip, window number
IDEMPOTENCY = "gateway:idem:{}:{}"  # account id, sha256 of the Idempotency-Key
