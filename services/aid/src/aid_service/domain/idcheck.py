"""A fast path for GB 11643 ID numbers in bulk (template imports of 100,000 rows).

Same verdicts as zizhu_common.idnumber.parse_resident_id (which stays the reference and gives
the reasons): an 18-character number is accepted here only when its check character and birth
date are valid; anything else goes through the reference for its error.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from operator import mul

from zizhu_common.idnumber import ID_CHECK_CHARS, ID_WEIGHTS, parse_resident_id

# sum(d * w) over ASCII codes, corrected for the "0" (48) offset of each digit.
_OFFSET = 48 * sum(ID_WEIGHTS)


@lru_cache(maxsize=65536)
def _birth_ok(digits: str, today: date) -> bool:
    try:
        born = date(int(digits[0:4]), int(digits[4:6]), int(digits[6:8]))
    except ValueError:
        return False
    return date(1900, 1, 1) <= born <= today


def normalize_resident_id_fast(number: str, today: date) -> str:
    """The canonical form of a valid resident ID; raises IdentifierError (from the reference)
    when it is not valid."""
    value = number.strip().upper()
    if (
        len(value) == 18
        and value[:17].isascii()
        and value[:17].isdigit()
        and ID_CHECK_CHARS[(sum(map(mul, value[:17].encode(), ID_WEIGHTS)) - _OFFSET) % 11]
        == value[17]
        and _birth_ok(value[6:14], today)
    ):
        return value
    return parse_resident_id(value).number
