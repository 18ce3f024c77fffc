"""Students from 学籍: validation of one sync row, and how a row changes what is stored (person
facts, enrolments, transfers). No I/O: the service supplies lookups and does the writing."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache

from zizhu_common.idnumber import (
    IdentifierError,
    mask_id_number,
    mask_phone,
    normalize_mobile_phone,
)

from roster_service.domain.common import (
    GENDER_ALIASES,
    HOUSEHOLD_ALIASES,
    ID_TYPE_ALIASES,
    K12_STAGES,
    LEAVING,
    ON_ROLL,
    STAGE_ALIASES,
    STATUS_ALIASES,
    Gender,
    IdType,
    RowError,
    Stage,
    StudentStatus,
    parse_date,
    resident_id,
)

# Field → column header of the template (学籍 export), in template order.
COLUMNS: dict[str, str] = {
    "id_type": "证件类型",
    "id_number": "身份证件号码",
    "name": "姓名",
    "gender": "性别",
    "birth_date": "出生日期",
    "ethnicity": "民族",
    "household_type": "户口性质",
    "household_region_code": "户籍所在地行政区划代码",
    "phone": "联系电话",
    "school_org_code": "学校标识码",
    "stage": "学段",
    "student_number": "学籍号",
    "grade": "年级",
    "class_name": "班级",
    "major_name": "专业",
    "status": "学籍状态",
    "status_date": "状态变动日期",
    "enrolled_on": "入学日期",
    "left_on": "离校日期",
    "boarder": "是否寄宿",
}
REQUIRED_COLUMNS = ("name", "school_org_code", "stage", "grade")
# Other headers accepted for a field (学籍 exports differ; the bench generator writes English).
COLUMN_ALIASES: dict[str, str] = {
    **{v: k for k, v in COLUMNS.items()},
    **{k: k for k in COLUMNS},
    "身份证号": "id_number",
    "身份证号码": "id_number",
    "证件号码": "id_number",
    "全国学籍号": "student_number",
    "学号": "student_number",
    "student_no": "student_number",
    "学校代码": "school_org_code",
    "school_code": "school_org_code",
    "班级号": "class_name",
    "class_no": "class_name",
    "寄宿": "boarder",
    "是否住校": "boarder",
    "boarding": "boarder",
    "手机号码": "phone",
    "户籍所在地": "household_region_code",
    "学籍状态变动日期": "status_date",
}
EXAMPLE_ROW = {
    "id_type": "居民身份证",
    "id_number": "11010519491231002X",
    "name": "张三",
    "gender": "女",
    "birth_date": "2012-09-01",
    "ethnicity": "01",
    "household_type": "农村",
    "household_region_code": "440106",
    "phone": "13800138000",
    "school_org_code": "2144010601",
    "stage": "义务教育",
    "student_number": "G11010519491231002X",
    "grade": "七年级",
    "class_name": "1班",
    "major_name": "",
    "status": "在籍",
    "status_date": "",
    "enrolled_on": "2024-09-01",
    "left_on": "",
    "boarder": "否",
}

_SCHOOL_CODE = re.compile(r"^\d{10}$")
_REGION = re.compile(r"^\d{6}$")
_G_NUMBER = re.compile(r"^G\d{17}[\dX]$")
_J_NUMBER = re.compile(r"^J\d{17}[\dX]$")
_L_NUMBER = re.compile(r"^L\d{18}$")
_LANDLINE = re.compile(r"^0\d{2,3}-?\d{7,8}$")
_OTHER_ID = re.compile(r"^[0-9A-Z()（）-]{5,30}$")
_TRUE = frozenset({"是", "1", "true", "yes", "y", "寄宿", "住校"})
_FALSE = frozenset({"", "否", "0", "false", "no", "n", "走读"})
MAX_NAME = 50
MAX_TEXT = 60


@dataclass(slots=True)
class StudentRow:
    """A validated 学籍 row: person facts (normalised) plus one enrolment."""

    row: int
    id_type: IdType
    id_number: str
    name: str
    gender: Gender
    birth_date: str
    ethnicity: str
    household_type: int
    household_region_code: str
    phone: str
    school_org_code: str
    stage: Stage
    student_number: str
    grade: str
    class_name: str
    major_name: str
    status: StudentStatus
    status_date: str
    enrolled_on: str
    left_on: str
    boarder: bool
    # The ID number and phone as shown in lists, and the 学籍号 as stored (see stored_number):
    # computed once, with the validation.
    id_number_masked: str = ""
    phone_masked: str = ""
    stored_student_number: str = ""


def _masked(field_name: str, value: str) -> str:
    if field_name == "id_number":
        return mask_id_number(value)
    if field_name == "phone":
        return mask_phone(value)
    return value[:100]


# parse_date of the texts a file repeats (birth dates, enrolment dates): a few thousand distinct
# values over a million rows.
_date = lru_cache(maxsize=32768)(parse_date)


def validate_row(
    row: int, raw: dict[str, str], *, today: date, stripped: bool = False
) -> StudentRow | list[RowError]:
    """Check one row's fields; returns the normalised row or every error found in it.
    `stripped`: raw holds only non-empty, already stripped values (bulk parsing)."""
    errors: list[RowError] = []

    def err(field_name: str, code: str, message: str) -> None:
        errors.append(
            RowError(
                row,
                COLUMNS[field_name],
                _masked(field_name, raw.get(field_name, "")),
                code,
                message,
            )
        )

    clean = raw if stripped else {k: v.strip() for k, v in raw.items() if v}

    get = clean.get

    id_type_text = get("id_type", "")
    id_type = ID_TYPE_ALIASES.get(id_type_text)
    if id_type is None:
        err("id_type", "ID_TYPE_UNKNOWN", "证件类型不在代码表中")
        id_type = IdType.RESIDENT_ID

    stage = STAGE_ALIASES.get(
        get("stage", "").lower() if get("stage", "").isascii() else get("stage", "")
    )
    if stage is None:
        err(
            "stage",
            "STAGE_UNKNOWN" if get("stage", "") else "STAGE_REQUIRED",
            "学段应为学前教育、义务教育、普通高中、中职、本专科或研究生",
        )

    student_number = get("student_number", "").upper()
    id_number = get("id_number", "").upper()
    id_birth: date | None = None
    id_gender: Gender | None = None
    if id_number and id_type == IdType.RESIDENT_ID:
        try:
            rid = resident_id(id_number)
        except IdentifierError as exc:
            err("id_number", exc.code, exc.message)
        else:
            id_number = rid.number
            id_birth = rid.birth_date
            id_gender = Gender.MALE if rid.gender == "male" else Gender.FEMALE
    elif id_number and not _OTHER_ID.match(id_number):
        err("id_number", "ID_NUMBER_FORMAT", "证件号码格式错误")

    if stage is not None and stage in K12_STAGES:
        if not student_number:
            err("student_number", "STUDENT_NUMBER_REQUIRED", "全国学籍号不能为空")
        elif _G_NUMBER.match(student_number):
            if id_number and id_type == IdType.RESIDENT_ID and student_number[1:] != id_number:
                err("student_number", "STUDENT_NUMBER_ID_MISMATCH", "G字头学籍号应为G加身份证号")
            elif not id_number:
                # A G number carries the ID number: use it when the ID column is empty.
                try:
                    rid = resident_id(student_number[1:])
                except IdentifierError as exc:
                    err(
                        "student_number",
                        "STUDENT_NUMBER_FORMAT",
                        f"学籍号中的身份证号无效：{exc.message}",
                    )
                else:
                    id_number, id_birth = rid.number, rid.birth_date
                    id_gender = Gender.MALE if rid.gender == "male" else Gender.FEMALE
                    id_type = IdType.RESIDENT_ID
        elif _J_NUMBER.match(student_number):
            pass
        elif _L_NUMBER.match(student_number):
            if parse_date(student_number[7:15]) is None:
                err("student_number", "STUDENT_NUMBER_FORMAT", "L字头临时学籍号中的出生日期无效")
        else:
            err("student_number", "STUDENT_NUMBER_FORMAT", "全国学籍号应为G、J或L加18位")
    elif stage is not None:
        if not student_number:
            err("student_number", "STUDENT_NUMBER_REQUIRED", "学号不能为空")
        elif len(student_number) > 40:
            err("student_number", "STUDENT_NUMBER_FORMAT", "学号不能超过40个字符")
    if not id_number and (stage is None or stage not in K12_STAGES or not student_number):
        if not any(e.column == COLUMNS["id_number"] for e in errors):
            err(
                "id_number",
                "ID_NUMBER_REQUIRED",
                "身份证件号码不能为空（无身份证的学生须有J或L字头学籍号）",
            )

    name = get("name", "")
    if not name:
        err("name", "NAME_REQUIRED", "姓名不能为空")
    elif len(name) > MAX_NAME:
        err("name", "NAME_TOO_LONG", f"姓名不能超过{MAX_NAME}个字")

    gender_text = get("gender", "").lower()
    gender = GENDER_ALIASES.get(gender_text) if gender_text else id_gender
    if gender is None:
        err("gender", "GENDER_UNKNOWN" if gender_text else "GENDER_REQUIRED", "性别应为男或女")
    elif id_gender is not None and gender != id_gender:
        err("gender", "GENDER_ID_MISMATCH", "性别与身份证号码第17位不一致")

    birth_text = get("birth_date", "")
    birth = _date(birth_text) if birth_text else id_birth
    if birth is None:
        err(
            "birth_date",
            "BIRTH_DATE_FORMAT" if birth_text else "BIRTH_DATE_REQUIRED",
            "出生日期应为YYYY-MM-DD或YYYYMMDD",
        )
    elif id_birth is not None and birth != id_birth:
        err("birth_date", "BIRTH_DATE_ID_MISMATCH", "出生日期与身份证号码不一致")
    elif birth > today:
        err("birth_date", "BIRTH_DATE_FUTURE", "出生日期不能晚于今天")

    household_text = get("household_type", "")
    household = HOUSEHOLD_ALIASES.get(household_text) if household_text else None
    if household_text and household is None:
        err("household_type", "HOUSEHOLD_TYPE_UNKNOWN", "户口性质应为农村或城镇")
    region = get("household_region_code", "")
    if region and not _REGION.match(region):
        err("household_region_code", "REGION_CODE_FORMAT", "户籍所在地应为6位行政区划代码")
    ethnicity = get("ethnicity", "")
    if len(ethnicity) > 20:
        err("ethnicity", "ETHNICITY_FORMAT", "民族应为代码或名称")

    phone = get("phone", "")
    if phone:
        try:
            phone = normalize_mobile_phone(phone)
        except IdentifierError as exc:
            if _LANDLINE.match(phone):
                phone = phone.replace("-", "")
            else:
                err("phone", exc.code, "联系电话应为手机号或带区号的固定电话")

    school = get("school_org_code", "")
    if not school:
        err("school_org_code", "SCHOOL_REQUIRED", "学校标识码不能为空")
    elif not _SCHOOL_CODE.match(school):
        err("school_org_code", "SCHOOL_CODE_FORMAT", "学校标识码应为10位数字")

    grade = get("grade", "")
    if not grade:
        err("grade", "GRADE_REQUIRED", "年级不能为空")
    elif len(grade) > 20:
        err("grade", "GRADE_TOO_LONG", "年级不能超过20个字符")
    class_name = get("class_name", "")
    if len(class_name) > MAX_TEXT:
        err("class_name", "CLASS_TOO_LONG", f"班级不能超过{MAX_TEXT}个字符")
    major = get("major_name", "")
    if len(major) > 100:
        err("major_name", "MAJOR_TOO_LONG", "专业不能超过100个字符")

    status_text = get("status", "")
    status = (
        STATUS_ALIASES.get(status_text.lower() if status_text.isascii() else status_text)
        if status_text
        else StudentStatus.IN_SCHOOL
    )
    if status is None:
        err(
            "status", "STATUS_UNKNOWN", "学籍状态应为在籍、在籍不在校、休学、转学、毕业、退学或死亡"
        )
        status = StudentStatus.IN_SCHOOL

    dates: dict[str, str] = {}
    for key in ("status_date", "enrolled_on", "left_on"):
        value = get(key, "")
        if not value:
            dates[key] = ""
            continue
        parsed = _date(value)
        if parsed is None:
            err(key, "DATE_FORMAT", f"{COLUMNS[key]}应为YYYY-MM-DD或YYYYMMDD")
            dates[key] = ""
        elif parsed > today:
            err(key, "DATE_FUTURE", f"{COLUMNS[key]}不能晚于今天")
            dates[key] = ""
        else:
            dates[key] = parsed.isoformat()
    if status in LEAVING:
        if not dates["status_date"] and not dates["left_on"] and get("status_date", "") == "":
            err("status_date", "STATUS_DATE_REQUIRED", "转学、毕业、退学、死亡须填写状态变动日期")
        dates["left_on"] = dates["left_on"] or dates["status_date"]
        dates["status_date"] = dates["status_date"] or dates["left_on"]
    elif dates["left_on"]:
        err("left_on", "LEFT_ON_WHILE_ENROLLED", "在籍学生不应有离校日期")
    if dates["enrolled_on"] and dates["left_on"] and dates["left_on"] < dates["enrolled_on"]:
        err("left_on", "LEFT_BEFORE_ENROLLED", "离校日期早于入学日期")
    if birth is not None and dates["enrolled_on"] and dates["enrolled_on"] <= birth.isoformat():
        err("enrolled_on", "ENROLLED_BEFORE_BIRTH", "入学日期早于出生日期")

    boarder_text = get("boarder", "").lower()
    if boarder_text in _TRUE:
        boarder = True
    elif boarder_text in _FALSE:
        boarder = False
    else:
        err("boarder", "BOARDER_FORMAT", "是否寄宿应为是或否")
        boarder = False

    if errors:
        return errors
    assert stage is not None and gender is not None and birth is not None
    return StudentRow(
        row=row,
        id_type=id_type,
        id_number=id_number,
        name=name,
        gender=gender,
        birth_date=birth.isoformat(),
        ethnicity=ethnicity,
        household_type=int(household or 0),
        household_region_code=region,
        phone=phone,
        school_org_code=school,
        stage=stage,
        student_number=student_number,
        grade=grade,
        class_name=class_name,
        major_name=major,
        status=status,
        status_date=dates["status_date"],
        enrolled_on=dates["enrolled_on"],
        left_on=dates["left_on"],
        boarder=boarder,
        id_number_masked=mask_id_number(id_number) if id_number else "",
        phone_masked=mask_phone(phone) if phone else "",
        stored_student_number=stored_number(student_number),
    )


# ---------------------------------------------------------------------------------------------
# What a row changes
# ---------------------------------------------------------------------------------------------

PERSON_FIELDS = (
    "name",
    "gender",
    "birth_date",
    "ethnicity",
    "household_type",
    "household_region_code",
)
ENROLLMENT_FIELDS = (
    "student_number",
    "grade",
    "class_name",
    "major_name",
    "status",
    "status_date",
    "enrolled_on",
    "left_on",
    "boarder",
)


@dataclass(slots=True)
class StoredPerson:
    """The stored person facts of a student (as the repository reads them)."""

    student_id: str
    id_type: int
    has_id_number: bool
    id_number_bi: str
    id_number_masked: str
    name: str
    gender: int
    birth_date: str
    ethnicity: str
    household_type: int
    household_region_code: str
    phone_enc: str
    phone_masked: str
    current_enrollment_id: str
    version: int


@dataclass(slots=True)
class StoredEnrollment:
    """One stored enrolment."""

    enrollment_id: str
    student_id: str
    school_org_code: str
    school_org_path: str
    stage: int
    student_number: str
    grade: str
    class_name: str
    major_name: str
    status: int
    status_date: str
    enrolled_on: str
    left_on: str
    boarder: bool
    is_current: bool
    version: int

    def snapshot(self) -> dict[str, str]:
        """Field values as text, for history records."""
        return {f: _text(getattr(self, f)) for f in ENROLLMENT_FIELDS}


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def person_changes(
    stored: StoredPerson, row: StudentRow, stored_phone: str
) -> dict[str, tuple[str, str]]:
    """Person fields the row changes: field → (before, after) as text (phone masked)."""
    changes: dict[str, tuple[str, str]] = {}
    for f in PERSON_FIELDS:
        before, after = _text(getattr(stored, f)), _text(getattr(row, f))
        if f in ("ethnicity", "household_type", "household_region_code") and after in ("", "0"):
            continue  # an empty optional column keeps what is known
        if before != after:
            changes[f] = (before, after)
    if row.phone and row.phone != stored_phone:
        changes["phone"] = (stored.phone_masked, row.phone_masked)
    return changes


def stored_number(number: str) -> str:
    """The 学籍号 as stored and shown: a G number is "G" + the ID number, so it is kept masked
    like the ID number itself (the student is found through the ID's blind index)."""
    if number.startswith("G") and len(number) == 19:
        return "G" + mask_id_number(number[1:])
    return number


def lookup_number(number: str) -> bool:
    """True for 学籍号 looked up as themselves (J and L numbers; G numbers go through the ID)."""
    return bool(number) and not number.startswith("G")


def enrollment_changes(stored: StoredEnrollment, row: StudentRow) -> dict[str, tuple[str, str]]:
    """Enrolment fields the row changes: field → (before, after) as text."""
    changes: dict[str, tuple[str, str]] = {}
    for f in ENROLLMENT_FIELDS:
        before, after = _text(getattr(stored, f)), _text(getattr(row, f))
        if f == "student_number":
            after = stored_number(after)
        if f in ("class_name", "major_name", "enrolled_on", "status_date") and after == "":
            continue
        if before != after:
            changes[f] = (before, after)
    return changes


@dataclass(slots=True)
class Departure:
    """How an earlier enrolment ends when the student appears at another school or stage."""

    status: StudentStatus
    left_on: str


def departure_for(previous: StoredEnrollment, row: StudentRow, *, today: date) -> Departure | None:
    """The end of a still-active enrolment when the row enrols the student elsewhere: a move in
    the same stage is a transfer (转学); a move to a later stage ends the earlier one as 毕业."""
    if previous.status not in ON_ROLL or row.status not in ON_ROLL:
        return None
    left = row.enrolled_on or today.isoformat()
    if previous.stage < row.stage:
        return Departure(StudentStatus.GRADUATED, left)
    return Departure(StudentStatus.TRANSFERRED_OUT, left)


@dataclass(slots=True)
class RowOutcome:
    """What the service did with one row (for counts and response ids)."""

    row: int
    student_id: str = ""
    created: bool = False
    updated: bool = False
    errors: list[RowError] = field(default_factory=list)


def was_in_school(
    status: int, enrolled_on: str, left_on: str, status_date: str, lo: date, hi: date
) -> bool:
    """True when an enrolment was on the roll (在籍在校) at some time in [lo, hi]."""
    return was_in_school_iso(
        status, enrolled_on, left_on, status_date, lo, hi, lo.isoformat(), hi.isoformat()
    )


def was_in_school_iso(
    status: int,
    enrolled_on: str,
    left_on: str,
    status_date: str,
    lo: date,
    hi: date,
    lo_iso: str,
    hi_iso: str,
) -> bool:
    """`was_in_school` with the bounds' ISO texts already made (batched checks)."""
    if enrolled_on and enrolled_on > hi_iso:
        return False
    if status == StudentStatus.IN_SCHOOL:
        return True
    ended = left_on or status_date
    return bool(ended) and ended >= lo_iso
