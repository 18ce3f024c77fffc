"""The roster's GmSSL field cipher writes what FieldCipher reads, and the same blind index."""

import pytest
from roster_service.fieldcrypto import RosterCipher
from zizhu_common.crypto import CryptoError, FieldCipher


def test_ciphertexts_and_blind_index_match_field_cipher() -> None:
    fast = RosterCipher("s3cret", key_id="k2", previous={"k1": "old"}, index_secret="idx")
    plain = FieldCipher("s3cret", key_id="k2", previous={"k1": "old"}, index_secret="idx")
    for value in ("11010519491231002X", "13800138000", "", "张三"):
        token = fast.encrypt(value, context="person.id_number")
        assert token.startswith("sm4g1:k2:")
        assert plain.decrypt(token, context="person.id_number") == value
        assert fast.decrypt(plain.encrypt(value, context="c"), context="c") == value
        assert fast.blind_index(value, context="person.id_number") == plain.blind_index(
            value, context="person.id_number"
        )
    # The context stays authenticated data; fresh nonces make every ciphertext differ.
    token = fast.encrypt("13800138000", context="student.phone")
    with pytest.raises(CryptoError):
        plain.decrypt(token, context="person.id_number")
    assert token != fast.encrypt("13800138000", context="student.phone")
