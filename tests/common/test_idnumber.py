"""GB 11643 resident IDs, mainland mobile numbers and their masks."""

from __future__ import annotations

from datetime import date

import pytest
from zizhu_common.idnumber import (
    IdentifierError,
    gender_of,
    id_check_char,
    is_valid_mobile_phone,
    is_valid_resident_id,
    mask_id_number,
    mask_phone,
    normalize_mobile_phone,
    normalize_resident_id,
    parse_resident_id,
    upgrade_15_to_18,
)


def test_reference_id_number_is_valid_and_decoded() -> None:
    rid = parse_resident_id("11010519491231002X")
    assert rid.number == "11010519491231002X"
    assert rid.address_code == "110105"
    assert rid.birth_date == date(1949, 12, 31)
    assert rid.gender == "female"  # 17th digit 2 is even


def test_check_char_follows_iso_7064_mod_11_2() -> None:
    assert id_check_char("11010519491231002") == "X"
    # 440106 + 20080808 + 123 -> computed by hand: sum mod 11 selects the character
    first17 = "44010620080808123"
    total = sum(
        int(d) * w
        for d, w in zip(first17, (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2), strict=True)
    )
    assert id_check_char(first17) == "10X98765432"[total % 11]


def test_lowercase_x_is_normalized_to_uppercase() -> None:
    assert normalize_resident_id(" 11010519491231002x ") == "11010519491231002X"


def test_wrong_checksum_is_refused_with_code() -> None:
    with pytest.raises(IdentifierError) as info:
        parse_resident_id("110105194912310021")
    assert info.value.code == "ID_NUMBER_CHECKSUM"
    assert "校验位" in info.value.message


@pytest.mark.parametrize("bad", ["11010519490230002", "110105194902300020", "110105190002290011"])
def test_impossible_birth_date_is_refused(bad: str) -> None:
    number = bad if len(bad) == 18 else bad + id_check_char(bad)
    fixed = number[:17] + id_check_char(number[:17])
    with pytest.raises(IdentifierError) as info:
        parse_resident_id(fixed)
    assert info.value.code == "ID_NUMBER_BIRTH_DATE"


def test_future_birth_date_is_refused() -> None:
    first17 = "11010530000101002"
    with pytest.raises(IdentifierError):
        parse_resident_id(first17 + id_check_char(first17))


@pytest.mark.parametrize("bad", ["", "1101051949123100", "11010519491231002A", "abc"])
def test_malformed_id_numbers_are_refused(bad: str) -> None:
    assert not is_valid_resident_id(bad)


def test_legacy_15_digit_id_is_upgraded() -> None:
    assert upgrade_15_to_18("110105491231002") == "11010519491231002X"
    assert normalize_resident_id("110105491231002") == "11010519491231002X"


def test_gender_from_17th_digit() -> None:
    male17 = "44010620080808121"
    assert gender_of(male17 + id_check_char(male17)) == "male"
    assert gender_of("11010519491231002X") == "female"


def test_masks() -> None:
    assert mask_id_number("11010519491231002X") == "110105********002X"
    assert mask_phone("13812345678") == "138****5678"
    assert mask_id_number("E1234567") == "E1****67"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("13812345678", "13812345678"),
        ("+86 138-1234-5678", "13812345678"),
        ("8613812345678", "13812345678"),
        ("199 0000 1111", "19900001111"),
    ],
)
def test_mainland_mobile_numbers_are_normalized(raw: str, expected: str) -> None:
    assert normalize_mobile_phone(raw) == expected


@pytest.mark.parametrize("bad", ["", "12812345678", "1381234567", "010-12345678", "2381234567a"])
def test_bad_mobile_numbers_are_refused(bad: str) -> None:
    assert not is_valid_mobile_phone(bad)
