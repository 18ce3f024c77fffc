"""SM3/SM4/SM2 helpers: field encryption, blind index, PBKDF2-HMAC-SM3, SM2 keys and tokens."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path

import gmssl_pyx
import pytest
from zizhu_common.crypto import (
    CryptoError,
    FieldCipher,
    Sm2Signer,
    Sm2Verifier,
    TokenError,
    generate_sm2_keypair,
    hash_password,
    hmac_sm3,
    load_sm2_public_key,
    password_hash_iterations,
    pbkdf2_sm3,
    sign_token,
    sm3,
    verify_password,
    verify_token,
)

SECRET = "a-test-secret-of-at-least-32-characters!"


def test_sm3_matches_the_standard_vector() -> None:
    # GB/T 32905-2016 example 1: SM3("abc").
    assert sm3(b"abc").hex() == ("66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0")


def test_hmac_sm3_matches_gmssl() -> None:
    assert hmac_sm3(b"key", b"message") == gmssl_pyx.sm3_hmac(b"key", b"message")


def test_field_cipher_round_trip_with_fresh_nonces() -> None:
    cipher = FieldCipher(SECRET)
    a = cipher.encrypt("11010519491231002X", context="account.id_number")
    b = cipher.encrypt("11010519491231002X", context="account.id_number")
    assert a != b and a.startswith("sm4g1:k1:")
    assert "11010519491231002X" not in a
    assert cipher.decrypt(a, context="account.id_number") == "11010519491231002X"


def test_field_cipher_detects_tampering() -> None:
    cipher = FieldCipher(SECRET)
    token = cipher.encrypt("13812345678", context="account.phone")
    prefix, kid, body = token.split(":")
    raw = bytearray(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    raw[14] ^= 0x01
    tampered = f"{prefix}:{kid}:" + base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    with pytest.raises(CryptoError):
        cipher.decrypt(tampered, context="account.phone")


def test_field_cipher_binds_the_context() -> None:
    cipher = FieldCipher(SECRET)
    token = cipher.encrypt("13812345678", context="account.phone")
    with pytest.raises(CryptoError):
        cipher.decrypt(token, context="account.id_number")


def test_field_cipher_refuses_other_keys_and_formats() -> None:
    token = FieldCipher(SECRET).encrypt("x")
    with pytest.raises(CryptoError):
        FieldCipher("another-secret-of-at-least-32-characters").decrypt(token)
    with pytest.raises(CryptoError):
        FieldCipher(SECRET).decrypt("plain-text")


def test_field_cipher_key_rotation_keeps_old_values_readable() -> None:
    old = FieldCipher(SECRET, key_id="k1")
    token = old.encrypt("13812345678")
    new = FieldCipher(
        "rotated-secret-of-at-least-32-characters",
        key_id="k2",
        previous={"k1": SECRET},
        index_secret=SECRET,
    )
    assert new.decrypt(token) == "13812345678"
    assert new.encrypt("x").startswith("sm4g1:k2:")
    assert new.blind_index("13812345678") == old.blind_index("13812345678")


def test_blind_index_is_deterministic_keyed_and_context_bound() -> None:
    cipher = FieldCipher(SECRET)
    idx = cipher.blind_index("11010519491231002X", context="id")
    assert idx == cipher.blind_index("11010519491231002X", context="id")
    assert len(idx) == 64
    assert idx != cipher.blind_index("11010519491231002X", context="phone")
    assert idx != FieldCipher("other-secret-of-at-least-32-characters!!").blind_index(
        "11010519491231002X", context="id"
    )
    assert idx != sm3(b"11010519491231002X").hex()


def test_pbkdf2_sm3_is_rfc8018_over_hmac_sm3() -> None:
    # One iteration of PBKDF2 is U1 = HMAC(P, S || INT(1)).
    assert pbkdf2_sm3("pw", b"salt", 1) == hmac_sm3(b"pw", b"salt\x00\x00\x00\x01")
    # Two iterations: U1 xor U2.
    u1 = hmac_sm3(b"pw", b"salt\x00\x00\x00\x01")
    u2 = hmac_sm3(b"pw", u1)
    assert pbkdf2_sm3("pw", b"salt", 2) == bytes(a ^ b for a, b in zip(u1, u2, strict=True))


def test_password_hash_round_trip_and_per_call_salt() -> None:
    a = hash_password("Zizhu@2024", iterations=1000)
    b = hash_password("Zizhu@2024", iterations=1000)
    assert a != b and a.startswith("pbkdf2-sm3$1000$")
    assert password_hash_iterations(a) == 1000
    assert verify_password("Zizhu@2024", a)
    assert not verify_password("Zizhu@2025", a)
    assert not verify_password("Zizhu@2024", "garbage")


def test_production_iterations_hash_is_usable() -> None:
    encoded = hash_password("Zizhu@2024", iterations=100_000)
    assert verify_password("Zizhu@2024", encoded)


def test_sm2_sign_and_verify_with_pem_keys() -> None:
    private_pem, public_pem = generate_sm2_keypair()
    signer = Sm2Signer(private_pem)
    verifier = Sm2Verifier(public_pem)
    sig = signer.sign(b"hello")
    assert len(sig) == 64
    assert verifier.verify(b"hello", sig)
    assert not verifier.verify(b"hellp", sig)
    assert not verifier.verify(b"hello", sig[:-1] + bytes([sig[-1] ^ 1]))
    assert signer.key_id == verifier.key_id


def test_sm2_hex_keys() -> None:
    public, private = gmssl_pyx.sm2_key_generate()
    signer = Sm2Signer(private.hex(), public_key=public.hex())
    assert Sm2Verifier("04" + public.hex()).verify(b"m", signer.sign(b"m"))
    with pytest.raises(CryptoError):
        Sm2Signer(private.hex(), public_key=gmssl_pyx.sm2_key_generate()[0])


def test_sm2_public_key_not_on_curve_is_refused() -> None:
    with pytest.raises(CryptoError):
        load_sm2_public_key("04" + "11" * 64)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI not installed")
def test_openssl_reads_our_pem_and_we_read_openssl_keys(tmp_path: Path) -> None:
    private_pem, public_pem = generate_sm2_keypair()
    (tmp_path / "k.pem").write_text(private_pem)
    out = subprocess.run(
        ["openssl", "pkey", "-in", str(tmp_path / "k.pem"), "-pubout"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert load_sm2_public_key(out) == load_sm2_public_key(public_pem)
    made = subprocess.run(
        ["openssl", "genpkey", "-algorithm", "SM2"], capture_output=True, text=True
    )
    if made.returncode == 0:
        signer = Sm2Signer(made.stdout)
        assert signer.verifier.verify(b"x", signer.sign(b"x"))


def _token_parts(token: str) -> list[str]:
    return token.split(".")


def _b64(obj: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


@pytest.fixture(scope="module")
def signer() -> Sm2Signer:
    return Sm2Signer(generate_sm2_keypair()[0])


def test_token_round_trip(signer: Sm2Signer) -> None:
    token = sign_token(signer, {"sub": "A1", "exp": 2_000, "roles": ["admin"], "name": "张三"})
    header = json.loads(base64.urlsafe_b64decode(_token_parts(token)[0] + "=="))
    assert header == {"alg": "SM2SM3", "typ": "JWT", "kid": signer.key_id}
    claims = verify_token(token, {signer.key_id: signer.verifier}, now=1_000)
    assert claims["sub"] == "A1" and claims["name"] == "张三"


def test_expired_token_is_refused(signer: Sm2Signer) -> None:
    token = sign_token(signer, {"sub": "A1", "exp": 2_000})
    with pytest.raises(TokenError) as info:
        verify_token(token, {signer.key_id: signer.verifier}, now=2_000)
    assert info.value.code == "TOKEN_EXPIRED"


def test_tampered_payload_is_refused(signer: Sm2Signer) -> None:
    head, _body, sig = _token_parts(sign_token(signer, {"sub": "A1", "exp": 2_000}))
    forged = f"{head}.{_b64({'sub': 'A2', 'exp': 2_000})}.{sig}"
    with pytest.raises(TokenError) as info:
        verify_token(forged, {signer.key_id: signer.verifier}, now=1_000)
    assert info.value.code == "TOKEN_SIGNATURE"


@pytest.mark.parametrize("alg", ["none", "HS256", "ES256", "sm2sm3"])
def test_other_algorithms_are_refused(signer: Sm2Signer, alg: str) -> None:
    _head, body, sig = _token_parts(sign_token(signer, {"sub": "A1", "exp": 2_000}))
    forged = f"{_b64({'alg': alg, 'typ': 'JWT', 'kid': signer.key_id})}.{body}.{sig}"
    with pytest.raises(TokenError) as info:
        verify_token(forged, {signer.key_id: signer.verifier}, now=1_000)
    assert info.value.code == "TOKEN_ALG"


def test_unknown_key_and_garbage_are_refused(signer: Sm2Signer) -> None:
    other = Sm2Signer(generate_sm2_keypair()[0])
    token = sign_token(other, {"sub": "A1", "exp": 2_000})
    with pytest.raises(TokenError) as info:
        verify_token(token, {signer.key_id: signer.verifier}, now=1_000)
    assert info.value.code == "TOKEN_KEY_UNKNOWN"
    # Same kid claimed, other key's signature.
    forged = sign_token(other, {"sub": "A1", "exp": 2_000}, key_id=signer.key_id)
    with pytest.raises(TokenError) as info:
        verify_token(forged, {signer.key_id: signer.verifier}, now=1_000)
    assert info.value.code == "TOKEN_SIGNATURE"
    for garbage in ["", "a.b", "a.b.c", "!!!.???.###"]:
        with pytest.raises(TokenError):
            verify_token(garbage, {signer.key_id: signer.verifier}, now=1_000)


def test_encrypt_many_and_the_empty_value_share_one_format() -> None:
    from zizhu_common.crypto import FieldCipher, personal_data_cipher

    cipher = personal_data_cipher("s" * 32, key_id="k2", previous_keys="k1=" + "o" * 32)
    values = ["110101199003077777", "", "6222020200112233445"]
    sealed = cipher.encrypt_many(values, context="bank_card")
    assert len(set(sealed)) == 3 and all(v.startswith("sm4g1:k2:") for v in sealed)
    assert [cipher.decrypt(v, context="bank_card") for v in sealed] == values
    assert cipher.encrypt_many(values, context="bank_card", keep_empty=True)[1] == ""
    # a plain FieldCipher of the same secrets reads them and finds the same blind index
    plain = FieldCipher("s" * 32, key_id="k2")
    assert plain.decrypt(sealed[0], context="bank_card") == values[0]
    assert plain.blind_index("x", context="id") == cipher.blind_index("x", context="id")
    # the old key still decrypts, the index secret survives a rotation
    old = personal_data_cipher("o" * 32, key_id="k1")
    assert cipher.decrypt(old.encrypt("旧值", context="c"), context="c") == "旧值"
    rotated = personal_data_cipher("n" * 32, key_id="k3", previous_keys="index=" + "s" * 32)
    assert rotated.blind_index("x", context="id") == cipher.blind_index("x", context="id")
