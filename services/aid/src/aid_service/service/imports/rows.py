"""Template import's shared pieces: the module logger and limits, the summary an upload or
commit answers, the uploaded file, and template rows read into entry rows (unreadable cells become
row issues)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from zizhu_common.bulk import paused_gc
from zizhu_common.idnumber import mask_id_number

from aid_service import xlsx
from aid_service.domain.enums import IdType
from aid_service.repository.imports import COMMITTED, StoredImport
from aid_service.roster import MAX_CHECKS_PER_CALL
from aid_service.service.entry import Checked, EntryRow, RowIssue

# The logger keeps the name it had before the module became a package.
log = logging.getLogger(__package__)

SUMMARY_ERRORS = 1000
# Rows validated per step of the pipeline, one CheckEnrollment call each.
CHUNK_ROWS = MAX_CHECKS_PER_CALL


@dataclass
class ImportResult:
    """What an upload or commit answers (common.v1.ImportSummary)."""

    import_id: str
    file_name: str
    total_rows: int
    valid_rows: int
    error_rows: int
    dry_run: bool
    committed: bool
    created_count: int
    errors: list[dict[str, Any]] = field(default_factory=list)
    errors_truncated: bool = False
    expires_at: datetime | None = None


Sink = Callable[[list[EntryRow], list[RowIssue]], Awaitable[list[EntryRow]]]


class _Rejected(Exception):
    """A committing import found problems: roll its records back, keep its errors."""

    def __init__(self, checked: Checked) -> None:
        super().__init__("import rejected")
        self.checked = checked


@dataclass(frozen=True)
class Upload:
    """A file as uploaded."""

    file_name: str
    content: bytes


def _rows(raws: Sequence[xlsx.RawRow]) -> tuple[list[EntryRow], list[RowIssue]]:
    """Entry rows from template rows; cells that cannot be read become row issues."""
    with paused_gc():
        return _entry_rows(raws)


def _entry_rows(raws: Sequence[xlsx.RawRow]) -> tuple[list[EntryRow], list[RowIssue]]:
    rows: list[EntryRow] = []
    issues: list[RowIssue] = []
    id_type_of = xlsx.id_type_of
    parse_yuan = xlsx.parse_yuan
    for raw in raws:
        bad = False
        id_type = id_type_of(raw.id_type)
        if id_type is None:
            issues.append(RowIssue(raw.row, "id_type", raw.id_type, "ID_TYPE_INVALID",
                                   "证件类型无效，请从下拉列表选择"))  # fmt: skip
            bad = True
        if raw.id_number_numeric:
            issues.append(RowIssue(raw.row, "id_number", mask_id_number(raw.id_number),
                                   "ID_NUMBER_NOT_TEXT",
                                   "身份证件号码须以文本格式填写（数字格式会丢失末尾数字）"))  # fmt: skip
            bad = True
        amount = 0
        if raw.amount:
            try:
                amount = parse_yuan(raw.amount)
            except ValueError:
                issues.append(RowIssue(raw.row, "amount", raw.amount, "AMOUNT_INVALID",
                                       "资助金额应为数字（元），最多两位小数"))  # fmt: skip
                bad = True
        if bad:
            continue
        rows.append(
            EntryRow(
                row=raw.row,
                student_name=raw.student_name,
                id_number=raw.id_number.upper(),
                id_type=id_type or IdType.RESIDENT_ID,
                student_number=raw.student_number,
                tier_code=raw.tier_code,
                amount_fen=amount,
                bank_name=raw.bank_name,
                bank_card_number=raw.bank_card_number.replace(" ", ""),
                remark=raw.remark,
            )
        )
    return rows, issues


def _summary(
    imp: StoredImport, *, dry_run: bool, errors: list[dict[str, Any]] | None = None
) -> ImportResult:
    errs = imp.errors if errors is None else errors
    return ImportResult(
        import_id=imp.import_id,
        file_name=imp.file_name,
        total_rows=imp.total_rows,
        valid_rows=imp.valid_rows,
        error_rows=imp.error_rows,
        dry_run=dry_run,
        committed=imp.status == COMMITTED,
        created_count=imp.created_count,
        errors=errs[:SUMMARY_ERRORS],
        errors_truncated=len(errs) > SUMMARY_ERRORS,
        expires_at=imp.expires_at,
    )
