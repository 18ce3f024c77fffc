"""Deterministic, national-shaped synthetic data for the benchmarks (DOMAIN.md §2.3, §3, §5, §6).

Everything comes from one seeded ``random.Random`` owned by a :class:`DataGen`, so a seed and the
same calls give the same data; IDs are unique within one ``DataGen`` (one run). Rows are
``NamedTuple``s, streams are iterators, and CSV output is streamed, so millions of rows never sit
in memory::

    gen = DataGen(seed=1)
    tree = gen.org_tree(provinces=1, counties=100, schools=5_000)
    write_students_csv("students.csv", gen, tree, 1_000_000)

Modules: ``tables`` (reference data), ``ids`` (GB 11643 / 学校标识码 checks), ``model`` (rows),
``orgtree`` (tree shapes), ``generator`` (people, groups, aid), ``csvout`` (CSV streaming).
"""

from bench.datagen.csvout import write_csv, write_orgs_csv, write_students_csv
from bench.datagen.generator import DataGen
from bench.datagen.ids import (
    birth_date_range,
    id_check_char,
    id_checksum_ok,
    id_number_ok,
    school_code_ok,
)
from bench.datagen.model import (
    AID_HEADER,
    GROUP_HEADER,
    NATIONAL_CODE,
    ORG_HEADER,
    STUDENT_HEADER,
    TERMS,
    AidRecord,
    GroupMember,
    OrgTree,
    OrgUnit,
    Student,
)
from bench.datagen.orgtree import build_org_tree
from bench.datagen.tables import AID_PROJECTS, SPECIAL_GROUPS, STAGES, AidProject

__all__ = [
    "AID_HEADER",
    "AID_PROJECTS",
    "GROUP_HEADER",
    "NATIONAL_CODE",
    "ORG_HEADER",
    "SPECIAL_GROUPS",
    "STAGES",
    "STUDENT_HEADER",
    "TERMS",
    "AidProject",
    "AidRecord",
    "DataGen",
    "GroupMember",
    "OrgTree",
    "OrgUnit",
    "Student",
    "birth_date_range",
    "build_org_tree",
    "id_check_char",
    "id_checksum_ok",
    "id_number_ok",
    "school_code_ok",
    "write_csv",
    "write_orgs_csv",
    "write_students_csv",
]
