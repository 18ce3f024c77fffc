"""FieldCipher's GmSSL one-shot paths give exactly what the reference construction (`cryptography`'s
SM4-GCM and HMAC-SM3) gives: values written by either are read by the other, with the same blind
index, the context authenticated and a fresh nonce each time."""

import base64

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from zizhu_common.crypto import CryptoError, FieldCipher, derive_key, hmac_sm3

SECRET, INDEX = "s3cret", "idx"


def _reference_decrypt(token: str, context: str) -> str:
    _, _, body = token.split(":")
    raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    nonce, data, tag = raw[:12], raw[12:-16], raw[-16:]
    key = derive_key(SECRET, label="zizhu/field-encryption/sm4", length=16)
    dec = Cipher(algorithms.SM4(key), modes.GCM(nonce, tag)).decryptor()
    dec.authenticate_additional_data(f"zizhu-field:{context}|".encode())
    return (dec.update(data) + dec.finalize()).decode()


def test_one_shot_paths_match_the_reference_construction() -> None:
    cipher = FieldCipher(SECRET, key_id="k2", previous={"k1": "old"}, index_secret=INDEX)
    index_key = derive_key(INDEX, label="zizhu/blind-index/sm3")
    for value in ("11010519491231002X", "13800138000", "", "张三"):
        token = cipher.encrypt(value, context="person.id_number")
        assert token.startswith("sm4g1:k2:")
        assert _reference_decrypt(token, "person.id_number") == value
        assert cipher.decrypt(token, context="person.id_number") == value
        expected = hmac_sm3(index_key, b"zizhu-field:person.id_number|" + value.encode()).hex()
        assert cipher.blind_index(value, context="person.id_number") == expected
    token = cipher.encrypt("13800138000", context="student.phone")
    with pytest.raises(CryptoError):
        cipher.decrypt(token, context="person.id_number")
    assert token != cipher.encrypt("13800138000", context="student.phone")
