"""The rows entry validation works on: an entry row, a row issue (with its error class for a
single entry), the checked result, and the 学籍号 comparison shared by the checks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from zizhu_common.errors import AlreadyExists, DomainError, FailedPrecondition, InvalidArgument

from aid_service.domain.enums import IdType
from aid_service.domain.projects import AmountChoice
from aid_service.roster import EnrollmentAnswer
from aid_service.xlsx import FIELD_HEADER

# Error class of a single entry refused for a row code (InvalidArgument otherwise).
_ERROR_CLASS: dict[str, type[DomainError]] = {
    "DUPLICATE_RECORD": AlreadyExists,
    "EXCLUSIVE_PROJECT": FailedPrecondition,
    "QUOTA_EXCEEDED": FailedPrecondition,
    "RECOGNITION_REQUIRED": FailedPrecondition,
}


@dataclass(slots=True)
class EntryRow:
    """One record to enter, as given (single entry: row 1; import: the spreadsheet row)."""

    row: int
    student_name: str
    id_number: str = ""
    id_type: IdType = IdType.RESIDENT_ID
    student_id: str = ""
    student_number: str = ""
    tier_code: str = ""
    amount_fen: int = 0
    bank_name: str = ""
    bank_card_number: str = ""
    remark: str = ""
    amount: AmountChoice | None = None
    answer: EnrollmentAnswer | None = None
    # The bank card number sealed for storage (a committing import seals while roster answers).
    bank_card_sealed: str = ""


@dataclass(slots=True)
class RowIssue:
    """One problem of one row: row, field/column, value (masked when personal), code, reason."""

    row: int
    field: str
    value: str
    code: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        """The stored and reported form (column = the template's Chinese header)."""
        return {
            "row": self.row,
            "column": FIELD_HEADER.get(self.field, self.field),
            "value": self.value,
            "code": self.code,
            "message": self.message,
        }

    def as_error(self) -> DomainError:
        """The refusal of a single entry."""
        cls = _ERROR_CLASS.get(self.code, InvalidArgument)
        return cls(self.message, code=self.code, field=self.field)


@dataclass
class Checked:
    """Rows that passed so far, and every problem found."""

    rows: list[EntryRow]
    issues: list[RowIssue] = field(default_factory=list)


def same_number(given: str, known: str) -> bool:
    """A 学籍号 as given equals roster's, which may come masked (G440106********0039)."""
    first = known.find("*")
    if first < 0:
        return given.upper() == known.upper()
    if len(given) != len(known):
        return False
    g, k = given.upper(), known.upper()
    last = k.rfind("*") + 1
    if k.count("*") == last - first:  # one run of stars: compare what is around it
        return g[:first] == k[:first] and g[last:] == k[last:]
    return all(c == "*" or c == d for d, c in zip(g, k, strict=True))
