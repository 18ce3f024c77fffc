"""Personal identifiers: GB 11643 resident ID numbers and mainland mobile phone numbers.

Pure functions. Invalid input raises `IdentifierError` (a ValueError) carrying a stable code and a
Chinese message, so a service can turn it into a field-level error without re-deriving why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Literal

# ISO 7064 MOD 11-2 weights of the first 17 digits, and the check character for each remainder.
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK_CHARS = "10X98765432"

_ID18 = re.compile(r"^\d{17}[\dX]$")
_ID15 = re.compile(r"^\d{15}$")
_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_PHONE_SEPARATORS = re.compile(r"[\s\-()（）]")
# The earliest birth date accepted: older records would be data-entry mistakes.
_MIN_BIRTH = date(1900, 1, 1)


class IdentifierError(ValueError):
    """A malformed personal identifier, with a stable code and a Chinese reason."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ResidentId:
    """A validated 18-character resident ID number (公民身份号码) and what it encodes."""

    number: str
    address_code: str
    birth_date: date
    gender: Literal["male", "female"]


def id_check_char(first17: str) -> str:
    """The GB 11643 check character (ISO 7064 MOD 11-2) of the first 17 digits."""
    if len(first17) != 17 or not first17.isdigit():
        raise IdentifierError("ID_NUMBER_FORMAT", "身份证号码前17位必须是数字")
    total = sum(int(d) * w for d, w in zip(first17, ID_WEIGHTS, strict=True))
    return ID_CHECK_CHARS[total % 11]


def upgrade_15_to_18(number: str) -> str:
    """Convert a legacy 15-digit ID (YYMMDD, no check digit) to its 18-character form."""
    value = number.strip()
    if not _ID15.match(value):
        raise IdentifierError("ID_NUMBER_FORMAT", "15位身份证号码必须全部是数字")
    first17 = value[:6] + "19" + value[6:]
    return first17 + id_check_char(first17)


def _birth_date(digits: str) -> date:
    try:
        born = date(int(digits[0:4]), int(digits[4:6]), int(digits[6:8]))
    except ValueError:
        raise IdentifierError("ID_NUMBER_BIRTH_DATE", "身份证号码中的出生日期不存在") from None
    if born < _MIN_BIRTH or born > date.today():
        raise IdentifierError("ID_NUMBER_BIRTH_DATE", "身份证号码中的出生日期超出合理范围")
    return born


def parse_resident_id(number: str) -> ResidentId:
    """Validate a resident ID (18 characters, or a legacy 15-digit one) and decode it."""
    value = (number or "").strip().upper()
    if not value:
        raise IdentifierError("ID_NUMBER_REQUIRED", "身份证号码不能为空")
    if _ID15.match(value):
        _birth_date("19" + value[6:12])
        value = upgrade_15_to_18(value)
    if not _ID18.match(value):
        raise IdentifierError(
            "ID_NUMBER_FORMAT", "身份证号码应为18位：前17位数字，最后一位为数字或X"
        )
    born = _birth_date(value[6:14])
    if id_check_char(value[:17]) != value[17]:
        raise IdentifierError("ID_NUMBER_CHECKSUM", "身份证号码校验位错误")
    return ResidentId(
        number=value,
        address_code=value[:6],
        birth_date=born,
        gender="male" if int(value[16]) % 2 == 1 else "female",
    )


def normalize_resident_id(number: str) -> str:
    """The canonical 18-character form of a valid resident ID (uppercase X, 15 upgraded)."""
    return parse_resident_id(number).number


def is_valid_resident_id(number: str) -> bool:
    """True when number is a valid resident ID (18 characters or legacy 15 digits)."""
    try:
        parse_resident_id(number)
    except IdentifierError:
        return False
    return True


def gender_of(number: str) -> Literal["male", "female"]:
    """Gender encoded by the 17th digit: odd is male, even is female."""
    return parse_resident_id(number).gender


def normalize_mobile_phone(phone: str) -> str:
    """The 11-digit form of a mainland mobile number (accepts +86/86 prefixes and separators)."""
    value = _PHONE_SEPARATORS.sub("", (phone or "").strip())
    if not value:
        raise IdentifierError("PHONE_REQUIRED", "手机号码不能为空")
    if value.startswith("+86"):
        value = value[3:]
    elif value.startswith("0086"):
        value = value[4:]
    elif value.startswith("86") and len(value) == 13:
        value = value[2:]
    if not _MOBILE.match(value):
        raise IdentifierError("PHONE_FORMAT", "手机号码应为11位中国大陆手机号（以1开头）")
    return value


def is_valid_mobile_phone(phone: str) -> bool:
    """True when phone is a mainland mobile number."""
    try:
        normalize_mobile_phone(phone)
    except IdentifierError:
        return False
    return True


def mask_id_number(number: str) -> str:
    """Mask an ID number for display: `110105********002X` (other documents keep 2+2)."""
    value = (number or "").strip().upper()
    if len(value) == 18:
        return value[:6] + "*" * 8 + value[-4:]
    if len(value) == 15:
        return value[:6] + "*" * 6 + value[-3:]
    if len(value) <= 4:
        return "*" * len(value)
    return value[:2] + "*" * (len(value) - 4) + value[-2:]


def mask_phone(phone: str) -> str:
    """Mask a phone number for display: `138****5678`."""
    value = (phone or "").strip()
    if len(value) == 11:
        return value[:3] + "****" + value[-4:]
    if len(value) <= 4:
        return "*" * len(value)
    return value[:2] + "*" * (len(value) - 4) + value[-2:]
