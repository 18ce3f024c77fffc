"""Identifier checks: resident ID (GB 11643), 学校标识码 (DOMAIN.md §5)."""

from __future__ import annotations

import datetime as dt

from bench.datagen.tables import PROVINCES, SCHOOL_CATEGORIES, STAGE_AGE_SPREAD, STAGE_BASE_AGE

ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"


def id_check_char(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character of the first 17 digits of a resident ID."""
    return ID_CHECK[sum(int(c) * w for c, w in zip(first17, ID_WEIGHTS, strict=True)) % 11]


def id_checksum_ok(s: str) -> bool:
    """True if s is 17 ASCII digits plus the right check character (uppercase X)."""
    if len(s) != 18 or not s.isascii() or not s[:17].isdigit():
        return False
    return s[17] == id_check_char(s[:17])


def id_number_ok(s: str) -> bool:
    """True if s passes :func:`id_checksum_ok` and its birth date is a real date."""
    if not id_checksum_ok(s):
        return False
    try:
        dt.date(int(s[6:10]), int(s[10:12]), int(s[12:14]))
    except ValueError:
        return False
    return True


def school_code_ok(code: str) -> bool:
    """True if code is a 10-digit 学校标识码 with a known category and province prefix."""
    return (
        len(code) == 10
        and code.isascii()
        and code.isdigit()
        and code[:2] in SCHOOL_CATEGORIES
        and code[2:4] in PROVINCES
    )


def birth_date_range(stage: str, grade: int, school_year: int) -> tuple[dt.date, dt.date]:
    """The earliest and latest birth date the generator gives a student of stage and grade."""
    age = STAGE_BASE_AGE[stage] + grade - 1
    oldest = age + len(STAGE_AGE_SPREAD[stage]) - 1
    return dt.date(school_year - oldest - 1, 9, 1), dt.date(school_year - age, 8, 31)
