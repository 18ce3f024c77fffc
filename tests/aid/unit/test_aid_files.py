"""Spreadsheets, fast ID checks and bulk sealing, without I/O."""

from __future__ import annotations

import io
import random
from datetime import date

import openpyxl
import pytest
from aid_service import xlsx
from aid_service.domain.enums import Category, IdType, Level, OwnerType, Stage
from aid_service.domain.idcheck import normalize_resident_id_fast
from aid_service.domain.projects import AmountTier, Project
from python_calamine import CalamineWorkbook
from zizhu_common.crypto import FieldCipher
from zizhu_common.errors import InvalidArgument, ResourceExhausted
from zizhu_common.idnumber import IdentifierError, id_check_char, parse_resident_id

PROJECT = Project("GJ-PG-ZXJ", "普通高中国家助学金", OwnerType.NATIONAL, "000000", "/000000/",
                  Level.NATIONAL, Stage.GENERAL_HIGH_SCHOOL, Category.NEED_BASED,
                  tiers=(AmountTier("1", "一档", 175000),))  # fmt: skip


def fill(template: bytes, rows: list[list[object]], *, sheet: str = "资助名单") -> bytes:
    wb = openpyxl.load_workbook(io.BytesIO(template))
    for i, row in enumerate(rows, start=2):
        for j, v in enumerate(row, start=1):
            wb[sheet].cell(row=i, column=j, value=v)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def test_filled_template_reads_back_with_spreadsheet_row_numbers() -> None:
    content = fill(xlsx.template(PROJECT), [
        ["张三", "", "11010519491231002x", "", "1", "", "", "", ""],
        [None] * 9,
        ["李四", "护照", "E12345678", "", "", "1,750.00", "招商银行", "6225 8812 3456 7890", "备注"],
    ])  # fmt: skip
    parsed = xlsx.parse_upload(content, project_code="GJ-PG-ZXJ")
    assert [r.row for r in parsed.rows] == [2, 4]
    first, second = parsed.rows
    assert (first.student_name, first.id_number, first.tier_code) == (
        "张三",
        "11010519491231002x",
        "1",
    )
    assert (second.id_type, second.amount, second.bank_card_number) == (
        "护照",
        "1,750.00",
        "6225 8812 3456 7890",
    )
    assert xlsx.parse_yuan(second.amount) == 175000 and xlsx.id_type_of("护照") is IdType.PASSPORT


def test_wrong_malformed_oversize_and_overlong_files_are_refused() -> None:
    other = xlsx.template(Project("X", "其他", OwnerType.NATIONAL, "000000", "/000000/", Level.NATIONAL,
                                  Stage.UNDERGRADUATE, Category.MERIT, tiers=(AmountTier("1", "", 1),)))  # fmt: skip
    for content, code in ((other, "WRONG_TEMPLATE"), (b"", "FILE_EMPTY"), (b"<html>", "FILE_MALFORMED"),
                          (b"PK\x03\x04junk", "FILE_MALFORMED")):  # fmt: skip
        with pytest.raises(InvalidArgument) as err:
            xlsx.parse_upload(content, project_code="GJ-PG-ZXJ")
        assert err.value.code == code and err.value.field == "file"
    with pytest.raises(ResourceExhausted):
        xlsx.parse_upload(b"PK\x03\x04" + bytes(xlsx.MAX_UPLOAD_BYTES), project_code="GJ-PG-ZXJ")
    rows = [["某", "", "11010519491231002X", "", "1", "", "", "", ""]] * 12
    with pytest.raises(ResourceExhausted) as err:
        xlsx.parse_upload(fill(xlsx.template(PROJECT), rows), project_code="GJ-PG-ZXJ", max_rows=10)
    assert err.value.code == "FILE_TOO_MANY_ROWS"


def test_amount_cells_parse_to_exact_fen() -> None:
    assert xlsx.parse_yuan("625.5") == 62550 and xlsx.parse_yuan("1,150元") == 115000
    for bad in ("1.234", "abc", "NaN", ""):
        with pytest.raises(ValueError):
            xlsx.parse_yuan(bad)


def test_report_lists_every_error_row() -> None:
    content = xlsx.report([{"row": 3, "column": "姓名", "value": "", "code": "NAME_REQUIRED", "message": "姓名不能为空"}],
                          title="a.xlsx")  # fmt: skip
    rows = CalamineWorkbook.from_filelike(io.BytesIO(content)).get_sheet_by_index(0).to_python()
    assert rows[2][1:] == ["姓名", "", "NAME_REQUIRED", "姓名不能为空"] and int(rows[2][0]) == 3


def test_fast_id_check_agrees_with_the_reference() -> None:
    rng = random.Random(7)
    today = date(2026, 11, 22)
    samples = []
    for _ in range(3000):
        first17 = f"{rng.randint(110000, 659999)}{rng.randint(1900, 2026)}{rng.randint(1, 13):02d}{rng.randint(1, 31):02d}{rng.randint(0, 999):03d}"
        good = first17 + id_check_char(first17)
        samples += [good, good.lower(), first17 + rng.choice("0123456789X"), good[:15], good[:-1]]
    for s in samples:
        try:
            expected = parse_resident_id(s).number
        except IdentifierError as exc:
            expected = exc.code
        try:
            got = normalize_resident_id_fast(s, today)
        except IdentifierError as exc:
            got = exc.code
        assert got == expected, s


def test_bulk_sealed_values_open_with_field_cipher() -> None:
    cipher = FieldCipher("s" * 32, key_id="k7")
    bulk = FieldCipher("s" * 32, key_id="k7")
    sealed = bulk.encrypt_many(["6222020200112233445", ""], context="c", keep_empty=True)
    assert cipher.decrypt(sealed[0], context="c") == "6222020200112233445" and sealed[1] == ""
    with pytest.raises(ValueError):
        cipher.decrypt(sealed[0], context="other")
