"""Bulk SM4-GCM encryption of personal fields, in the exact text format of
zizhu_common.crypto.FieldCipher (so FieldCipher decrypts it), about twice as fast per value and
safe to run in worker threads (OpenSSL releases the GIL): a 100,000-row import seals its bank
card numbers while roster answers its enrolment checks.

Candidate for zizhu_common (FieldCipher.encrypt_many); kept here until a second user needs it.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Sequence

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from zizhu_common.crypto import derive_key

_PREFIX = "sm4g1"
_LABEL = "zizhu/field-encryption/sm4"


class BulkSealer:
    """Encrypts many values under the current key of a FieldCipher built from the same secret."""

    def __init__(self, secret: str | bytes, *, key_id: str = "k1") -> None:
        self.key_id = key_id
        self._algorithm = algorithms.SM4(derive_key(secret, label=_LABEL, length=16))

    def seal(self, value: str, *, context: str) -> str:
        """One value (FieldCipher.encrypt format)."""
        return self.seal_many([value], context=context)[0]

    def seal_many(self, values: Sequence[str], *, context: str) -> list[str]:
        """Many values, each with a fresh 96-bit nonce; "" stays "" (nothing to protect)."""
        aad = f"zizhu-field:{context}|".encode()
        head = f"{_PREFIX}:{self.key_id}:"
        algorithm = self._algorithm
        urandom = os.urandom
        b64 = base64.urlsafe_b64encode
        out: list[str] = []
        append = out.append
        for value in values:
            if not value:
                append("")
                continue
            nonce = urandom(12)
            enc = Cipher(algorithm, modes.GCM(nonce)).encryptor()
            enc.authenticate_additional_data(aad)
            body = enc.update(value.encode()) + enc.finalize()
            append(head + b64(nonce + body + enc.tag).rstrip(b"=").decode("ascii"))
        return out
