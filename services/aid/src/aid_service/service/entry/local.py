"""Local checks (no I/O): ID number, name, tier and amount, bank card and lengths, row by row."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from zizhu_common.bulk import paused_gc
from zizhu_common.idnumber import IdentifierError, mask_id_number

from aid_service.domain.enums import IdType
from aid_service.domain.idcheck import normalize_resident_id_fast
from aid_service.domain.projects import AmountChoice, AmountProblem, Project, choose_amount, yuan
from aid_service.domain.records import check_bank_card, mask_bank_card
from aid_service.service.entry.rows import Checked, EntryRow, RowIssue

MAX_NAME = 50
MAX_REMARK = 200
MAX_BANK_NAME = 50


def check_locally(project: Project, rows: Sequence[EntryRow], *, today: date) -> Checked:
    """Checks that need neither roster nor the database."""
    return LocalChecks(project, today=today).check(rows)


class LocalChecks:
    """The local checks over a file fed in consecutive chunks (a pipelined import): duplicates
    are found across chunks, each amount choice is worked out once."""

    def __init__(self, project: Project, *, today: date) -> None:
        self.project = project
        self.today = today
        self.seen: dict[str, int] = {}
        self.amounts: dict[tuple[str, int], AmountChoice | AmountProblem] = {}

    def check(self, rows: Sequence[EntryRow]) -> Checked:
        """The rows of this chunk that passed, and the problems of the others."""
        with paused_gc():
            return self._check(rows)

    def _check(self, rows: Sequence[EntryRow]) -> Checked:
        project, today = self.project, self.today
        ok: list[EntryRow] = []
        issues: list[RowIssue] = []
        add = issues.append
        keep = ok.append
        seen = self.seen
        amounts = self.amounts
        resident = IdType.RESIDENT_ID
        normalize = normalize_resident_id_fast
        for r in rows:
            bad = False
            name = r.student_name
            if not name and not r.student_id:
                add(RowIssue(r.row, "student_name", "", "NAME_REQUIRED", "姓名不能为空"))
                bad = True
            elif len(name) > MAX_NAME:
                add(RowIssue(r.row, "student_name", name[:20], "NAME_TOO_LONG",
                             f"姓名不超过{MAX_NAME}个字"))  # fmt: skip
                bad = True
            if not r.student_id:
                id_type = r.id_type
                if id_type is resident:
                    try:
                        r.id_number = normalize(r.id_number, today)
                    except IdentifierError as exc:
                        add(RowIssue(r.row, "id_number", mask_id_number(r.id_number), exc.code,
                                     exc.message))  # fmt: skip
                        bad = True
                elif not r.id_number or len(r.id_number) > 30:
                    add(RowIssue(r.row, "id_number", mask_id_number(r.id_number),
                                 "ID_NUMBER_REQUIRED", "证件号码不能为空且不超过30位"))  # fmt: skip
                    bad = True
                if not bad:
                    key = r.id_number if id_type is resident else f"{int(id_type)}|{r.id_number}"
                    first = seen.get(key)
                    if first is not None:
                        add(RowIssue(r.row, "id_number", mask_id_number(r.id_number),
                                     "DUPLICATE_IN_FILE", f"与第{first}行是同一名学生"))  # fmt: skip
                        bad = True
                    else:
                        seen[key] = r.row
            amount_key = (r.tier_code, r.amount_fen)
            choice = amounts.get(amount_key)
            if choice is None:
                try:
                    choice = choose_amount(project, tier_code=r.tier_code, amount_fen=r.amount_fen)
                except AmountProblem as exc:
                    choice = exc
                amounts[amount_key] = choice
            if choice.__class__ is AmountChoice:
                r.amount = choice  # type: ignore[assignment]
            else:
                assert isinstance(choice, AmountProblem)
                value = r.tier_code if choice.field == "tier_code" else yuan(r.amount_fen)
                add(RowIssue(r.row, choice.field, value, choice.code, choice.message))
                bad = True
            card = r.bank_card_number
            problem = check_bank_card(card) if card else None
            if problem:
                add(RowIssue(r.row, "bank_card_number", mask_bank_card(card), "BANK_CARD_INVALID",
                             problem))  # fmt: skip
                bad = True
            if len(r.bank_name) > MAX_BANK_NAME:
                add(RowIssue(r.row, "bank_name", r.bank_name[:20], "TEXT_TOO_LONG",
                             f"开户银行不超过{MAX_BANK_NAME}个字"))  # fmt: skip
                bad = True
            if len(r.remark) > MAX_REMARK:
                add(RowIssue(r.row, "remark", r.remark[:20], "TEXT_TOO_LONG",
                             f"备注不超过{MAX_REMARK}个字"))  # fmt: skip
                bad = True
            if not bad:
                keep(r)
        return Checked(ok, issues)
