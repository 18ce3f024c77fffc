"""The rows the generator makes: org units and trees, students, memberships, aid records."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

NATIONAL_CODE = "000000"  # the national node of the org tree (not a GB/T 2260 code)
TERMS = ("autumn", "spring")


@dataclass(frozen=True, slots=True)
class OrgUnit:
    """A node of the organisation tree: national, province, city, county or school."""

    code: str
    name: str
    level: str
    parent_code: str | None
    category: str | None = None  # schools: the first two digits of the 学校标识码
    stages: tuple[str, ...] = ()  # schools: the stages it teaches
    grades: tuple[tuple[str, int, int], ...] = ()  # schools: (stage, first grade, last grade)
    region_code: str | None = None  # schools: the county it stands in


@dataclass(slots=True)
class OrgTree:
    """An org tree of a requested shape; explicit parent codes (DOMAIN.md §5.4)."""

    national: OrgUnit
    provinces: list[OrgUnit]
    cities: list[OrgUnit]
    counties: list[OrgUnit]
    schools: list[OrgUnit]

    def units(self) -> Iterator[OrgUnit]:
        """All nodes, parents before children."""
        yield self.national
        yield from self.provinces
        yield from self.cities
        yield from self.counties
        yield from self.schools

    def by_code(self) -> dict[str, OrgUnit]:
        """All nodes keyed by code."""
        return {u.code: u for u in self.units()}

    def __len__(self) -> int:
        return 1 + len(self.provinces) + len(self.cities) + len(self.counties) + len(self.schools)


class Student(NamedTuple):
    """One enrolled student (学籍): gender 男/女, birth_date YYYY-MM-DD, boarding 0/1."""

    id_number: str
    student_no: str  # 全国学籍号 (G/J/L + 18) or, in higher education, the school's 学号
    name: str
    gender: str
    birth_date: str
    phone: str
    school_code: str
    stage: str
    grade: int
    class_no: int
    boarding: int


class GroupMember(NamedTuple):
    """A special-group membership (DOMAIN.md §2.3); source 下发 (issued) or 自行采集."""

    id_number: str
    name: str
    group_code: str
    group_name: str
    source: str
    batch: str
    valid_from: str
    valid_to: str


class AidRecord(NamedTuple):
    """An aid payment for one term: period 2024-2025, term autumn/spring, amount in fen."""

    id_number: str
    name: str
    school_code: str
    stage: str
    project_code: str
    period: str
    term: str
    amount_fen: int


STUDENT_HEADER = Student._fields
GROUP_HEADER = GroupMember._fields
AID_HEADER = AidRecord._fields
ORG_HEADER = ("code", "name", "level", "parent_code", "category", "stages", "region_code")
