"""The synthetic-data generator and the benchmark runner (bench/)."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from bench.datagen import (
    NATIONAL_CODE,
    STUDENT_HEADER,
    DataGen,
    OrgTree,
    Student,
    birth_date_range,
    id_check_char,
    id_checksum_ok,
    id_number_ok,
    school_code_ok,
    write_csv,
    write_students_csv,
)
from bench.datagen.tables import AID_PROJECT_BY_CODE, PROVINCES, SCHOOL_CATEGORIES
from bench.registry import Benchmark, Result, bench_line, format_number

ROOT = Path(__file__).resolve().parents[2]
BENCH_LINE = re.compile(r"^BENCH (\S+) (-?[0-9.]+|nan) (\S+) target (>=|<=) ([0-9.]+) (PASS|FAIL)$")
CATEGORY_STAGES = {
    "11": {"学前"},
    "21": {"学前", "义务教育"},
    "31": {"义务教育"},
    "34": {"义务教育", "普高"},
    "36": {"中职"},
    "41": {"本专科", "研究生"},
    "51": {"义务教育"},
    "91": {"研究生"},
}


@pytest.fixture(scope="module")
def world() -> tuple[DataGen, OrgTree, list[Student]]:
    gen = DataGen(42)
    tree = gen.org_tree(provinces=2, counties=12, schools=120)
    students = list(gen.students_for_tree(tree, 30_000))
    return gen, tree, students


def test_reference_id_validates_and_any_one_digit_change_does_not():
    ref = "11010519491231002X"
    assert id_checksum_ok(ref) and id_number_ok(ref)
    assert id_check_char(ref[:17]) == "X"
    for i in range(17):
        for d in "0123456789":
            if d != ref[i]:
                assert not id_checksum_ok(ref[:i] + d + ref[i + 1 :]), (i, d)
    for c in "0123456789":
        assert not id_checksum_ok(ref[:17] + c)
    assert not id_checksum_ok(ref.lower())
    assert not id_checksum_ok(ref[:17])


def test_id_with_impossible_birth_date_is_refused():
    body = "11010519490231002"  # 31 February
    assert id_checksum_ok(body + id_check_char(body))
    assert not id_number_ok(body + id_check_char(body))


def test_student_ids_are_valid_unique_and_carry_gender(world):
    _, tree, students = world
    ids = [s.id_number for s in students]
    assert len(ids) == 30_000
    assert len(set(ids)) == len(ids)
    counties = {c.code for c in tree.counties}
    for s in students:
        assert id_number_ok(s.id_number), s
        assert s.id_number[:6] in counties
        assert (int(s.id_number[16]) % 2 == 1) == (s.gender == "男")
        assert s.id_number[6:14] == s.birth_date.replace("-", "")


def test_birth_dates_are_real_and_fit_the_stage_and_grade(world):
    gen, _, students = world
    for s in students:
        born = dt.date.fromisoformat(s.birth_date)
        lo, hi = birth_date_range(s.stage, s.grade, gen.school_year)
        assert lo <= born <= hi, s
    first_graders = [s for s in students if s.stage == "义务教育" and s.grade == 1]
    nominal = sum(
        dt.date(2017, 9, 1) <= dt.date.fromisoformat(s.birth_date) <= dt.date(2018, 8, 31)
        for s in first_graders
    )
    assert first_graders and nominal / len(first_graders) > 0.85


def test_student_numbers_follow_the_national_formats(world):
    _, _, students = world
    kinds = Counter()
    for s in students:
        no = s.student_no
        if s.stage in ("本专科", "研究生"):
            kinds["学号"] += 1
            assert no.isdigit()
            continue
        kinds[no[0]] += 1
        assert len(no) == 19, no
        if no[0] == "G":
            assert no[1:] == s.id_number
        elif no[0] == "J":
            assert no[1:18].isdigit() and id_checksum_ok(no[1:])
            assert no[7:15] == s.birth_date.replace("-", "")
        else:
            assert no[0] == "L" and no[1:].isdigit()
            assert no[7:15] == s.birth_date.replace("-", "")
    assert kinds["G"] > 0.9 * (kinds["G"] + kinds["J"] + kinds["L"])
    assert kinds["J"] and kinds["L"]
    numbers = [s.student_no for s in students]
    assert len(set(numbers)) == len(numbers)


def test_names_phones_and_classes_look_plausible(world):
    _, _, students = world
    for s in students[:5_000]:
        assert 2 <= len(s.name) <= 4
        assert re.fullmatch(r"1[3-9]\d{9}", s.phone), s.phone
        assert s.gender in ("男", "女") and s.boarding in (0, 1)
        assert s.class_no >= 1
    share_male = sum(s.gender == "男" for s in students) / len(students)
    assert 0.45 < share_male < 0.55


def test_school_codes_are_unique_ten_digits_with_the_province_prefix(world):
    _, tree, _ = world
    codes = [s.code for s in tree.schools]
    assert len(set(codes)) == len(codes)
    for s in tree.schools:
        assert school_code_ok(s.code), s.code
        assert s.code[:2] == s.category and s.category in SCHOOL_CATEGORIES
        assert s.code[2:4] == s.region_code[:2]
        assert set(s.stages) <= CATEGORY_STAGES[s.category]
        assert s.stages == tuple(dict.fromkeys(st for st, _, _ in s.grades))
        if s.category == "41":
            assert s.code[4] == "0"


def test_org_tree_has_the_requested_shape():
    tree = DataGen(7).org_tree(provinces=1, counties=100, schools=5_000, cities=9)
    assert len(tree.provinces) == 1
    assert len(tree.cities) == 9
    assert len(tree.counties) == 100
    assert len(tree.schools) == 5_000
    by_code = tree.by_code()
    assert len(by_code) == len(tree)
    assert tree.national.code == NATIONAL_CODE
    (province,) = tree.provinces
    assert province.code[2:] == "0000" and PROVINCES[province.code[:2]] == province.name
    for city in tree.cities:
        assert city.parent_code == province.code and city.code.endswith("00")
    for county in tree.counties:
        parent = by_code[county.parent_code]
        if county.code[2:4] == "90":
            assert parent is province
        else:
            assert parent.level == "city" and county.code[:4] == parent.code[:4]
            assert 1 <= int(county.code[4:]) <= 80
            assert county.name[-1] == ("区" if int(county.code[4:]) <= 20 else "县")
    for school in tree.schools:
        assert by_code[school.parent_code].level in ("national", "province", "city", "county")
        assert by_code[school.region_code].level == "county"
    assert Counter(s.category for s in tree.schools).most_common(1)[0][0] == "11"


def test_national_tree_uses_real_province_codes():
    tree = DataGen(1).org_tree(provinces=31, counties=400, schools=2_000)
    assert [p.code[:2] for p in tree.provinces] == sorted(PROVINCES)
    assert {p.name for p in tree.provinces} >= {"北京市", "新疆维吾尔自治区"}
    assert len(tree.counties) == 400


def test_same_seed_gives_the_same_data_and_another_seed_does_not():
    def make(seed: int) -> list[Student]:
        gen = DataGen(seed)
        tree = gen.org_tree(provinces=1, counties=5, schools=20)
        return list(gen.students_for_tree(tree, 3_000))

    assert make(5) == make(5)
    assert make(5) != make(6)


def test_special_groups_and_aid_follow_the_domain_rules(world):
    gen, _, students = world
    groups: dict[str, list[str]] = {}
    for m in gen.special_groups(students, rate=0.2):
        assert 1 <= int(m.group_code) <= 13 and m.source in ("下发", "自行采集")
        groups.setdefault(m.id_number, []).append(m.group_code)
    assert 0.15 < len(groups) / len(students) < 0.25
    assert any(len(v) > 1 for v in groups.values())
    records = list(gen.aid_records(students, groups=groups))
    assert records
    per_student: dict[str, set[str]] = {}
    for r in records:
        project = AID_PROJECT_BY_CODE[r.project_code]
        assert r.period == "2024-2025" and r.term in ("autumn", "spring")
        assert project.stage == r.stage
        allowed = (
            {t // 2 for t in project.tiers_fen} if project.per_term else set(project.tiers_fen)
        )
        assert r.amount_fen in allowed, r
        per_student.setdefault(r.id_number, set()).add(r.project_code)
    assert not any({"BZ02", "BZ03"} <= codes for codes in per_student.values())
    aided = sum(1 for i in groups if i in per_student) / len(groups)
    assert aided > 0.7
    assert 230_000 in AID_PROJECT_BY_CODE["PG01"].tiers_fen


def test_fast_csv_paths_agree_and_write_a_header(tmp_path):
    def tree_and_gen() -> tuple[DataGen, OrgTree]:
        gen = DataGen(9)
        return gen, gen.org_tree(provinces=1, counties=3, schools=10)

    gen, tree = tree_and_gen()
    n = write_students_csv(tmp_path / "a.csv", gen, tree, 5_000)
    gen, tree = tree_and_gen()
    m = write_csv(tmp_path / "b.csv", STUDENT_HEADER, gen.students_for_tree(tree, 5_000))
    gen, tree = tree_and_gen()
    k = write_csv(tmp_path / "c.csv", STUDENT_HEADER, gen.students_for_tree(tree, 5_000), safe=True)
    assert n == m == k == 5_000
    a = (tmp_path / "a.csv").read_bytes()
    assert a == (tmp_path / "b.csv").read_bytes() == (tmp_path / "c.csv").read_bytes()
    assert a.decode("utf-8").split("\n")[0] == ",".join(STUDENT_HEADER)


def test_write_dataset_streams_every_file(tmp_path):
    gen = DataGen(3)
    tree = gen.org_tree(provinces=1, counties=4, schools=30)
    counts = gen.write_dataset(tmp_path, tree, 4_000)
    assert counts["students"] == 4_000 and counts["orgs"] == len(tree)
    for name in ("orgs", "students", "special_groups", "aid_records"):
        lines = (tmp_path / f"{name}.csv").read_text(encoding="utf-8").splitlines()
        assert len(lines) == counts[name] + 1, name


def test_bench_line_format_and_verdict():
    faster = Benchmark("x", ">=", 20_000, "rows/s", "", lambda ctx: Result(0))
    slower = Benchmark("y", "<=", 0.5, "s", "", lambda ctx: Result(0))
    assert bench_line(faster, 23_150.4) == "BENCH x 23150 rows/s target >= 20000 PASS"
    assert bench_line(faster, 19_999) == "BENCH x 19999 rows/s target >= 20000 FAIL"
    assert bench_line(slower, 0.4213) == "BENCH y 0.421 s target <= 0.5 PASS"
    assert format_number(60.0) == "60"


def _run_bench(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BENCH_ROWS": "2000"}
    return subprocess.run(
        [sys.executable, "-m", "bench", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_runner_ends_with_the_bench_line():
    proc = _run_bench("datagen", "--scale", "small")
    assert proc.returncode == 0, proc.stderr
    last = proc.stdout.strip().splitlines()[-1]
    m = BENCH_LINE.match(last)
    assert m, last
    assert m.group(1) == "datagen" and m.group(3) == "students/s"
    assert m.group(4) == ">=" and m.group(5) == "300000"


def test_runner_lists_targets_and_refuses_unknown_names():
    listing = _run_bench("--list")
    assert listing.returncode == 0, listing.stderr
    assert re.search(r"^datagen\s+>= 300000 students/s", listing.stdout, re.M)
    assert re.search(r"^aid-import\s+>= 20000 rows/s", listing.stdout, re.M)
    unknown = _run_bench("no-such-bench")
    assert unknown.returncode == 2 and "no benchmark" in unknown.stderr
