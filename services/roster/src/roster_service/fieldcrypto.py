"""The roster's field cipher: `FieldCipher`'s format and keys, with the per-value work of bulk
paths (SM4-GCM encryption and the HMAC-SM3 blind index) done in single GmSSL calls.

`cryptography` builds a Cipher, a mode and a context object per value (about 17 µs for an ID
number); GmSSL's one-shot functions take 2–4 µs. The output is the same text format
(`sm4g1:<key_id>:<base64url(nonce || ciphertext || tag)>`) and the same blind index, so values
written here are read by `FieldCipher.decrypt` and found by any service's blind index (the tests
check both ways)."""

from __future__ import annotations

import base64
import os

import gmssl_pyx
from zizhu_common.crypto import FieldCipher

_NONCE_BYTES = 12


class RosterCipher(FieldCipher):
    """`FieldCipher` with one-shot GmSSL encryption and blind index (same outputs)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._aads: dict[str, bytes] = {}
        self._prefix = f"sm4g1:{self.key_id}:"

    def _aad_of(self, context: str) -> bytes:
        aad = self._aads.get(context)
        if aad is None:
            aad = self._aads[context] = self._aad(context)
        return aad

    def encrypt(self, plaintext: str, *, context: str = "") -> str:
        """Encrypt a text value under the current key; a fresh nonce every call."""
        if not plaintext:
            return super().encrypt(plaintext, context=context)  # GmSSL refuses empty input
        nonce = os.urandom(_NONCE_BYTES)
        body, tag = gmssl_pyx.sm4_gcm_encrypt(
            self._keys[self.key_id], nonce, self._aad_of(context), plaintext.encode()
        )
        token = base64.urlsafe_b64encode(nonce + body + tag).rstrip(b"=").decode("ascii")
        return self._prefix + token

    def blind_index(self, value: str, *, context: str = "") -> str:
        """Hex HMAC-SM3 of a normalised value, for exact lookups without decrypting."""
        return gmssl_pyx.sm3_hmac(self._index_key, self._aad_of(context) + value.encode()).hex()
