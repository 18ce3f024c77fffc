"""The organisation tree (机构树): levels, GB/T 2260 division codes, 学校标识码, and the import plan.

Explicit parent links with a materialised path (`/000000/440000/440100/440106/`): GB/T 2260 codes
do not nest cleanly (municipalities, `PP90xx` province-administered counties), and schools hang
under their managing authority at any level (部属高校 under the national node).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum


class Level(StrEnum):
    """The five levels of use (五级应用)."""

    NATIONAL = "national"  # 国家
    PROVINCE = "province"  # 省
    CITY = "city"  # 市
    COUNTY = "county"  # 县
    SCHOOL = "school"  # 校


LEVEL_RANK = {Level.NATIONAL: 1, Level.PROVINCE: 2, Level.CITY: 3, Level.COUNTY: 4, Level.SCHOOL: 5}
LEVEL_NAMES = {
    Level.NATIONAL: "国家",
    Level.PROVINCE: "省级",
    Level.CITY: "市级",
    Level.COUNTY: "县级",
    Level.SCHOOL: "学校",
}


class Stage(StrEnum):
    """Education stage (学段)."""

    PRESCHOOL = "preschool"  # 学前教育
    COMPULSORY = "compulsory"  # 义务教育
    GENERAL_HIGH_SCHOOL = "general_high_school"  # 普通高中
    SECONDARY_VOCATIONAL = "secondary_vocational"  # 中等职业教育
    UNDERGRADUATE = "undergraduate"  # 本专科
    POSTGRADUATE = "postgraduate"  # 研究生


STAGE_ALIASES: dict[str, Stage] = {
    **{s.value: s for s in Stage},
    "学前教育": Stage.PRESCHOOL,
    "学前": Stage.PRESCHOOL,
    "幼儿园": Stage.PRESCHOOL,
    "义务教育": Stage.COMPULSORY,
    "义务": Stage.COMPULSORY,
    "普通高中": Stage.GENERAL_HIGH_SCHOOL,
    "高中": Stage.GENERAL_HIGH_SCHOOL,
    "中等职业教育": Stage.SECONDARY_VOCATIONAL,
    "中职": Stage.SECONDARY_VOCATIONAL,
    "本专科": Stage.UNDERGRADUATE,
    "高等教育": Stage.UNDERGRADUATE,
    "本科": Stage.UNDERGRADUATE,
    "专科": Stage.UNDERGRADUATE,
    "研究生": Stage.POSTGRADUATE,
}


class OrgStatus(StrEnum):
    """正常 / 撤销."""

    ACTIVE = "active"
    RETIRED = "retired"


class Ownership(StrEnum):
    """办学性质 of a school."""

    PUBLIC = "public"  # 公办
    PRIVATE = "private"  # 民办


OWNERSHIP_ALIASES = {
    "public": Ownership.PUBLIC,
    "公办": Ownership.PUBLIC,
    "private": Ownership.PRIVATE,
    "民办": Ownership.PRIVATE,
}

# GB/T 2260 province prefixes (11 北京 … 65 新疆, 71 台湾, 81 香港, 82 澳门).
PROVINCE_PREFIXES = frozenset(
    "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 50 51 52 53 54 "
    "61 62 63 64 65 71 81 82".split()
)
# Municipalities (直辖市): their districts and counties sit directly under the province node.
MUNICIPALITIES = frozenset({"11", "12", "31", "50"})

# 学校标识码 category (first two digits) → (Chinese name, stages served by default).
SCHOOL_CATEGORIES: dict[str, tuple[str, tuple[Stage, ...]]] = {
    "11": ("幼儿园", (Stage.PRESCHOOL,)),
    "21": ("小学", (Stage.COMPULSORY,)),
    "22": ("成人小学", (Stage.COMPULSORY,)),
    "31": ("普通初中", (Stage.COMPULSORY,)),
    "32": ("职业初中", (Stage.COMPULSORY,)),
    "33": ("成人初中", (Stage.COMPULSORY,)),
    "34": ("普通高中", (Stage.GENERAL_HIGH_SCHOOL,)),
    "35": ("成人高中", (Stage.GENERAL_HIGH_SCHOOL,)),
    "36": ("中职", (Stage.SECONDARY_VOCATIONAL,)),
    "37": ("工读", (Stage.COMPULSORY,)),
    "41": ("普通高校", (Stage.UNDERGRADUATE, Stage.POSTGRADUATE)),
    "42": ("成人高校", (Stage.UNDERGRADUATE,)),
    "51": ("特殊教育", (Stage.COMPULSORY,)),
    "91": ("培养研究生的科研机构", (Stage.POSTGRADUATE,)),
    "92": ("民办其他高教", (Stage.UNDERGRADUATE,)),
    "93": ("中职培训机构", (Stage.SECONDARY_VOCATIONAL,)),
}

_DIVISION = re.compile(r"^\d{6}$")
_SCHOOL = re.compile(r"^\d{10}$")
MAX_NAME = 100


@dataclass
class Org:
    """One node of the tree."""

    code: str
    name: str
    level: Level
    parent_code: str | None
    org_path: str
    region_code: str = ""
    school_category: str = ""
    stages: tuple[Stage, ...] = ()
    ownership: str = ""
    status: OrgStatus = OrgStatus.ACTIVE
    created_at: datetime | None = None
    updated_at: datetime | None = None
    retired_at: datetime | None = None
    retire_reason: str = ""
    version: int = 1
    child_count: int = 0

    @property
    def depth(self) -> int:
        """Number of nodes on the path (the root has depth 1)."""
        return path_depth(self.org_path)

    def ancestor_codes(self) -> list[str]:
        """Codes from the root down to the parent."""
        return self.org_path.strip("/").split("/")[:-1]


def path_depth(org_path: str) -> int:
    """Number of codes in a materialised path."""
    return len([p for p in org_path.split("/") if p])


def child_path(parent_path: str, code: str) -> str:
    """The path of a child of the node at parent_path."""
    return f"{parent_path}{code}/"


def is_inside(org_path: str, scope_path: str) -> bool:
    """True when org_path lies in the subtree rooted at scope_path (the node itself included)."""
    return org_path.startswith(scope_path)


def is_strictly_inside(org_path: str, scope_path: str) -> bool:
    """True when org_path lies below scope_path (the node itself excluded)."""
    return org_path.startswith(scope_path) and org_path != scope_path


@dataclass(frozen=True)
class RowError:
    """One refused import row, as a user sees it (row, column, value, Chinese reason)."""

    row: int
    column: str
    value: str
    code: str
    message: str


@dataclass(frozen=True)
class OrgRow:
    """One org to create or update, keyed by code; None fields are derived or left unchanged."""

    row: int
    code: str
    name: str
    level: Level | None = None
    parent_code: str | None = None
    region_code: str | None = None
    stages: tuple[Stage, ...] | None = None
    ownership: Ownership | None = None
    columns: Mapping[str, str] = field(default_factory=dict)

    def column(self, name: str) -> str:
        """The user's column header for a field (for row errors)."""
        return self.columns.get(name, name)


class Grouping(Exception):
    """A GB/T 2260 statistical grouping row (市辖区, 省直辖县级行政区划), not an organisation."""


def classify_division(code: str) -> tuple[Level, str | None]:
    """(level, default parent code) of a GB/T 2260 code; None parent means the national root.

    Raises ValueError with a Chinese reason for malformed codes and Grouping for rows that name
    a statistical grouping rather than an authority.
    """
    if not _DIVISION.match(code):
        raise ValueError("行政区划代码应为6位数字")
    pp, cc, xx = code[:2], code[2:4], code[4:]
    if pp not in PROVINCE_PREFIXES:
        raise ValueError(f"省级代码 {pp} 不是有效的 GB/T 2260 省级代码")
    if cc == "00" and xx == "00":
        return Level.PROVINCE, None
    if cc == "00":
        raise ValueError("地市代码为00时县级代码也必须为00")
    direct = cc == "90" or (pp in MUNICIPALITIES and cc in ("01", "02"))
    if xx == "00":
        if direct:
            raise Grouping(code)
        return Level.CITY, f"{pp}0000"
    return Level.COUNTY, f"{pp}0000" if direct else f"{pp}{cc}00"


def school_category(code: str) -> str:
    """The category of a 学校标识码; raises ValueError with a Chinese reason when malformed."""
    if not _SCHOOL.match(code):
        raise ValueError("学校标识码应为10位数字")
    category, pp = code[:2], code[2:4]
    if category not in SCHOOL_CATEGORIES:
        raise ValueError(f"学校类别代码 {category} 不在《学校(机构)代码管理办法》的类别中")
    if pp not in PROVINCE_PREFIXES:
        raise ValueError(f"学校标识码第3-4位 {pp} 不是有效的省级代码")
    return category


def level_of_code(code: str) -> Level:
    """The level a code implies (10 digits: school; 6 digits: by GB/T 2260 pattern)."""
    if _SCHOOL.match(code):
        return Level.SCHOOL
    try:
        return classify_division(code)[0]
    except Grouping:
        return Level.CITY


def parse_stages(text: str) -> tuple[Stage, ...]:
    """Stages from `义务教育、普通高中` (Chinese or English names; 、,，;；| separated)."""
    stages: list[Stage] = []
    for part in re.split(r"[、,，;；|/\s]+", text.strip()):
        if not part:
            continue
        stage = STAGE_ALIASES.get(part.lower() if part.isascii() else part)
        if stage is None:
            raise ValueError(f"无法识别的学段“{part}”")
        if stage not in stages:
            stages.append(stage)
    return tuple(stages)


# Which parent levels each level may hang under.
_ALLOWED_PARENTS: dict[Level, frozenset[Level]] = {
    Level.NATIONAL: frozenset(),
    Level.PROVINCE: frozenset({Level.NATIONAL}),
    Level.CITY: frozenset({Level.PROVINCE}),
    Level.COUNTY: frozenset({Level.PROVINCE, Level.CITY}),
    Level.SCHOOL: frozenset({Level.NATIONAL, Level.PROVINCE, Level.CITY, Level.COUNTY}),
}


@dataclass
class OrgChange:
    """What the import does to one org."""

    kind: str  # created | updated | moved | unchanged
    org: Org
    row: int
    changed_fields: list[str] = field(default_factory=list)
    old_parent_code: str | None = None
    old_path: str = ""


@dataclass
class ImportPlan:
    """Validated outcome of an import: per-org changes and row errors."""

    changes: list[OrgChange] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    skipped_rows: list[int] = field(default_factory=list)

    def count(self, kind: str) -> int:
        """How many orgs the plan changes that way (a moved org that was renamed counts once)."""
        return sum(1 for c in self.changes if c.kind == kind)


def plan_import(
    rows: Sequence[OrgRow],
    *,
    existing: Mapping[str, Org],
    root: Org,
    scope_path: str,
    partial: bool = False,
) -> ImportPlan:
    """Validate rows against the existing orgs they reference and plan creates, updates, moves.

    `existing` holds every stored org whose code appears in the rows or as one of their parents.
    Orgs must end strictly inside scope_path. Without `partial`, any error means no change is
    planned (all-or-nothing); with it, valid rows whose parents are valid still go ahead.
    """
    plan = ImportPlan()
    resolved: dict[str, tuple[OrgRow, Level, str | None]] = {}
    for row in rows:
        try:
            item = _resolve_row(row, root=root, seen=resolved)
        except _RowProblem as problem:
            plan.errors.append(problem.error)
            continue
        except Grouping:
            plan.skipped_rows.append(row.row)
            continue
        resolved[row.code] = item

    paths: dict[str, str] = {root.code: root.org_path}
    levels: dict[str, Level] = {root.code: root.level}
    failed: set[str] = set()

    row_errors: dict[str, RowError] = {}

    def fail(code: str, problem: _RowProblem) -> None:
        row_errors.setdefault(code, problem.error)
        failed.add(code)

    def path_of(code: str, trail: tuple[str, ...]) -> str | None:
        if code in paths:
            return paths[code]
        if code in failed:
            return None
        if code not in resolved:
            # A parent outside the caller's subtree is answered as one that does not exist.
            known = existing.get(code)
            if (
                known is None
                or known.status != OrgStatus.ACTIVE
                or not is_inside(known.org_path, scope_path)
            ):
                return None
            paths[code], levels[code] = known.org_path, known.level
            return known.org_path
        try:
            return place(code, trail)
        except _RowProblem as problem:
            fail(code, problem)
            return None

    def place(code: str, trail: tuple[str, ...]) -> str:
        row, level, parent = resolved[code]
        parent_code = parent or root.code
        if parent_code == code or parent_code in trail:
            raise _RowProblem(row, "parent_code", parent_code, "PARENT_CYCLE", "上级机构形成循环")
        parent_path = path_of(parent_code, (*trail, code))
        if parent_path is None:
            in_batch = parent_code in resolved or parent_code in failed
            raise _RowProblem(
                row,
                "parent_code",
                parent_code,
                "PARENT_INVALID" if in_batch else "PARENT_NOT_FOUND",
                "上级机构所在行有误" if in_batch else f"上级机构 {parent_code} 不存在或已撤销",
            )
        parent_level = levels[parent_code]
        if parent_level not in _ALLOWED_PARENTS[level]:
            raise _RowProblem(
                row,
                "parent_code",
                parent_code,
                "PARENT_LEVEL",
                f"{LEVEL_NAMES[level]}机构不能隶属于{LEVEL_NAMES[parent_level]}机构",
            )
        if (
            level == Level.SCHOOL
            and parent_level != Level.NATIONAL
            and parent_code[:2] != code[2:4]
        ):
            raise _RowProblem(
                row,
                "parent_code",
                parent_code,
                "SCHOOL_PROVINCE_MISMATCH",
                "学校标识码中的省份与主管部门所在省份不一致",
            )
        old = existing.get(code)
        if old is not None and parent_path.startswith(old.org_path):
            raise _RowProblem(
                row, "parent_code", parent_code, "PARENT_CYCLE", "不能把机构移到其下级机构之下"
            )
        path = child_path(parent_path, code)
        paths[code], levels[code] = path, level
        return path

    for code, (row, level, _parent) in resolved.items():
        path = path_of(code, ())
        if path is None:
            continue
        old = existing.get(code)
        if not is_strictly_inside(path, scope_path) or (
            old is not None and not is_strictly_inside(old.org_path, scope_path)
        ):
            plan.errors.append(
                RowError(
                    row.row, row.column("code"), code, "OUT_OF_SCOPE", "该机构不在您的管理范围内"
                )
            )
            failed.add(code)
            continue
        if old is not None and old.status != OrgStatus.ACTIVE:
            plan.errors.append(
                RowError(
                    row.row,
                    row.column("code"),
                    code,
                    "ORG_RETIRED",
                    "该机构代码已撤销，不能再次使用",
                )
            )
            failed.add(code)
            continue
        if old is not None and old.level != level:
            plan.errors.append(
                RowError(
                    row.row, row.column("code"), code, "LEVEL_CHANGED", "不能修改已有机构的级别"
                )
            )
            failed.add(code)
            continue
        plan.changes.append(_change(row, level, path, old))

    plan.errors.extend(row_errors.values())
    plan.errors.sort(key=lambda e: (e.row, e.column))
    if plan.errors and not partial:
        plan.changes = []
    elif plan.errors:
        # Rows below a failed row cannot be placed either.
        bad_paths = [paths[c] for c in failed if c in paths]
        plan.changes = [
            c for c in plan.changes if not any(c.org.org_path.startswith(p) for p in bad_paths)
        ]
    plan.changes.sort(key=lambda c: (c.org.depth, c.org.code))
    return plan


class _RowProblem(Exception):
    def __init__(self, row: OrgRow, column: str, value: str, code: str, message: str) -> None:
        super().__init__(message)
        self.error = RowError(row.row, row.column(column), value, code, message)


def _resolve_row(
    row: OrgRow, *, root: Org, seen: Mapping[str, tuple[OrgRow, Level, str | None]]
) -> tuple[OrgRow, Level, str | None]:
    code = row.code.strip()
    if not code:
        raise _RowProblem(row, "code", code, "CODE_REQUIRED", "机构代码不能为空")
    if code == root.code:
        raise _RowProblem(row, "code", code, "ROOT_READ_ONLY", "根机构不能通过导入修改")
    if code in seen:
        raise _RowProblem(
            row, "code", code, "DUPLICATE_CODE", f"机构代码与第{seen[code][0].row}行重复"
        )
    name = row.name.strip()
    if not name:
        raise _RowProblem(row, "name", row.name, "NAME_REQUIRED", "机构名称不能为空")
    if len(name) > MAX_NAME:
        raise _RowProblem(
            row, "name", name[:20] + "…", "NAME_TOO_LONG", f"机构名称不能超过{MAX_NAME}个字"
        )
    if len(code) == 10 or row.level == Level.SCHOOL:
        try:
            school_category(code)
        except ValueError as exc:
            raise _RowProblem(row, "code", code, "SCHOOL_CODE_INVALID", str(exc)) from None
        if row.level not in (None, Level.SCHOOL):
            raise _RowProblem(
                row, "level", row.level.value, "LEVEL_MISMATCH", "10位学校标识码只能用于学校"
            )
        if not row.parent_code:
            raise _RowProblem(
                row, "parent_code", "", "AUTHORITY_REQUIRED", "学校必须填写主管部门代码"
            )
        return row, Level.SCHOOL, row.parent_code.strip()
    try:
        level, default_parent = classify_division(code)
    except ValueError as exc:
        raise _RowProblem(row, "code", code, "DIVISION_CODE_INVALID", str(exc)) from None
    if row.level not in (None, level):
        raise _RowProblem(
            row,
            "level",
            row.level.value,
            "LEVEL_MISMATCH",
            f"代码 {code} 对应{LEVEL_NAMES[level]}机构",
        )
    parent = (row.parent_code or "").strip() or default_parent
    if parent and not (_DIVISION.match(parent) or parent == root.code):
        raise _RowProblem(
            row, "parent_code", parent, "PARENT_CODE_INVALID", "上级代码应为6位行政区划代码"
        )
    return row, level, parent


def _change(row: OrgRow, level: Level, path: str, old: Org | None) -> OrgChange:
    parent_code = path.strip("/").split("/")[-2]
    category = row.code[:2] if level == Level.SCHOOL else ""
    stages = row.stages
    if level == Level.SCHOOL and not stages:
        stages = old.stages if old and old.stages else SCHOOL_CATEGORIES[category][1]
    ownership = (row.ownership.value if row.ownership else "") or (old.ownership if old else "")
    if level == Level.SCHOOL and not ownership:
        ownership = Ownership.PRIVATE.value if category == "92" else Ownership.PUBLIC.value
    region = row.region_code if row.region_code is not None else (old.region_code if old else None)
    if region is None:
        region = default_region(row.code, level, parent_code)
    new = Org(
        code=row.code,
        name=row.name.strip(),
        level=level,
        parent_code=parent_code,
        org_path=path,
        region_code=region,
        school_category=category,
        stages=tuple(stages or ()),
        ownership=ownership if level == Level.SCHOOL else "",
    )
    if old is None:
        return OrgChange("created", new, row.row)
    changed = [
        name
        for name in ("name", "region_code", "stages", "ownership")
        if getattr(old, name) != getattr(new, name)
    ]
    merged = replace(
        old,
        name=new.name,
        region_code=new.region_code,
        stages=new.stages,
        ownership=new.ownership,
        parent_code=parent_code,
        org_path=path,
    )
    if old.parent_code != parent_code:
        return OrgChange("moved", merged, row.row, changed, old.parent_code, old.org_path)
    return OrgChange("updated" if changed else "unchanged", merged, row.row, changed)


def default_region(code: str, level: Level, parent_code: str) -> str:
    """GB/T 2260 region of an org: itself for divisions; for a school its managing division,
    or its province (from the code) when it is run by the nation."""
    if level != Level.SCHOOL:
        return code
    if _DIVISION.match(parent_code) and parent_code != "000000":
        return parent_code
    return f"{code[2:4]}0000"


def descendants_rewritten(path: str, old_prefix: str, new_prefix: str) -> str:
    """A descendant's path after its ancestor at old_prefix moved to new_prefix."""
    return new_prefix + path[len(old_prefix) :] if path.startswith(old_prefix) else path


def codes_referenced(rows: Iterable[OrgRow]) -> set[str]:
    """Every code an import reads: the rows' own codes and their explicit or default parents."""
    codes: set[str] = set()
    for row in rows:
        code = row.code.strip()
        codes.add(code)
        if row.parent_code:
            codes.add(row.parent_code.strip())
        elif _DIVISION.match(code):
            try:
                parent = classify_division(code)[1]
            except (ValueError, Grouping):
                continue
            if parent:
                codes.add(parent)
    return codes
