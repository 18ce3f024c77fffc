"""The seeded generator: people (IDs, names, students), special groups and aid records."""

from __future__ import annotations

import csv
import datetime as dt
import random
from array import array
from collections.abc import Collection, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from bench.datagen.csvout import write_csv, write_orgs_csv
from bench.datagen.ids import ID_CHECK, ID_WEIGHTS, id_check_char
from bench.datagen.model import (
    AID_HEADER,
    GROUP_HEADER,
    STUDENT_HEADER,
    TERMS,
    AidRecord,
    GroupMember,
    OrgTree,
    OrgUnit,
    Student,
)
from bench.datagen.orgtree import build_org_tree
from bench.datagen.tables import (
    AID_PROJECT_BY_CODE,
    BOARDING_PER_1024,
    CATEGORY_MIX,
    GIVEN_FEMALE,
    GIVEN_MALE,
    GIVEN_NEUTRAL,
    PHONE_PREFIXES,
    SPECIAL_GROUPS,
    STAGE_AGE_SPREAD,
    STAGE_BASE_AGE,
    STAGE_CLASS_SIZE,
    SURNAMES,
    AidProject,
)
from bench.datagen.util import apportion, expand

_DATE_BITS = 14  # cohort tables hold 2**14 birth dates
_SEQ_SLOTS = 499  # 3-digit sequences per (county, birth date, gender): 2..998 / 3..999


def _given_pool(chars: str, size: int, seed: int) -> list[str]:
    r = random.Random(seed)
    pool = []
    for _ in range(size):
        a = r.choice(chars)
        pool.append(a if r.random() < 0.2 else a + r.choice(chars))
    return pool


_SURNAME_TABLE = expand(SURNAMES, 4096)
_MALE_GIVEN = _given_pool(GIVEN_MALE + GIVEN_NEUTRAL, 1 << 14, 11)
_FEMALE_GIVEN = _given_pool(GIVEN_FEMALE + GIVEN_NEUTRAL, 1 << 14, 12)
_PHONE_TABLE = expand(PHONE_PREFIXES, 64)
_GROUP_TABLE = expand([(code, w) for code, _, w in SPECIAL_GROUPS], 1024)
_GROUP_NAME = {code: name for code, name, _ in SPECIAL_GROUPS}


def _seq_table(male: bool, seed: int) -> list[tuple[str, int]]:
    """Sequence numbers in a shuffled order: (3-digit text, weighted sum of its digits)."""
    js = list(range(1, _SEQ_SLOTS + 1))
    random.Random(seed).shuffle(js)
    out = []
    for j in js:
        s = f"{2 * j + (1 if male else 0):03d}"
        out.append((s, sum(int(c) * w for c, w in zip(s, ID_WEIGHTS[14:], strict=True))))
    return out


# Each county draws sequence numbers in one of eight shuffled orders; [0] female, [1] male.
_SEQ_ORDERS = [(_seq_table(False, 100 + i), _seq_table(True, 200 + i)) for i in range(8)]
_DIGITS4 = [f"{i % 10_000:04d}" for i in range(1 << 14)]

# (YYYYMMDD, YYYY-MM-DD, weighted sum of its digits, 2 * day index)
_DateEntry = tuple[str, str, int, int]


class DataGen:
    """Seeded generator of org trees, students, special groups and aid records for one run."""

    def __init__(self, seed: int = 1, *, school_year: int = 2024) -> None:
        self.seed = seed
        self.school_year = school_year
        self.period = f"{school_year}-{school_year + 1}"
        self.rng = random.Random(seed)
        self._day0 = dt.date(school_year - 45, 1, 1)
        self._ndays = (dt.date(school_year + 1, 12, 31) - self._day0).days + 1
        self._days: dict[int, _DateEntry] = {}
        self._cohorts: dict[tuple[str, int], list[_DateEntry]] = {}
        self._county_index: dict[str, int] = {}
        self._county_codes: list[str] = []
        self._county_wsum: list[int] = []
        self._counters: list[array | None] = []
        self._county_seqs: list[tuple[list[tuple[str, int]], list[tuple[str, int]]]] = []
        self._origins: list[int] = []
        self._j_seq: dict[str, int] = {}
        self._l_used: set[str] = set()
        self._he_seq: dict[str, int] = {}

    # --- org tree ------------------------------------------------------------------------------

    def org_tree(
        self,
        *,
        provinces: int | Sequence[str] = 1,
        counties: int = 100,
        schools: int = 5_000,
        cities: int | None = None,
    ) -> OrgTree:
        """Build a tree with :func:`build_org_tree` and use its counties as home areas."""
        tree = build_org_tree(
            self.rng, provinces=provinces, counties=counties, schools=schools, cities=cities
        )
        self.use_tree(tree)
        return tree

    def use_tree(self, tree: OrgTree) -> None:
        """Register the tree's counties as home areas for ID numbers (done by org_tree)."""
        idx = [self._county(u.code) for u in tree.counties]
        self._origins = [idx[k * len(idx) // 4096] for k in range(4096)] if idx else []

    # --- people --------------------------------------------------------------------------------

    def _county(self, code: str) -> int:
        i = self._county_index.get(code)
        if i is None:
            i = len(self._county_codes)
            self._county_index[code] = i
            self._county_codes.append(code)
            self._county_wsum.append(
                sum(int(c) * w for c, w in zip(code, ID_WEIGHTS[:6], strict=True))
            )
            self._counters.append(None)
            self._county_seqs.append(_SEQ_ORDERS[(i * 5 + int(code)) % 8])
        return i

    def _day(self, i: int) -> _DateEntry:
        e = self._days.get(i)
        if e is None:
            d = self._day0 + dt.timedelta(days=i)
            compact = f"{d.year:04d}{d.month:02d}{d.day:02d}"
            w = sum(int(c) * w for c, w in zip(compact, ID_WEIGHTS[6:14], strict=True))
            e = (compact, f"{compact[:4]}-{compact[4:6]}-{compact[6:]}", w, 2 * i)
            self._days[i] = e
        return e

    def _cohort(self, stage: str, grade: int) -> list[_DateEntry]:
        """2**14 birth dates for (stage, grade): mostly the nominal cohort, some older."""
        key = (stage, grade)
        tab = self._cohorts.get(key)
        if tab is not None:
            return tab
        y = self.school_year
        age = STAGE_BASE_AGE[stage] + grade - 1
        spread = STAGE_AGE_SPREAD[stage]
        tab = []
        for extra, cnt in enumerate(apportion(1 << _DATE_BITS, spread)):
            start = dt.date(y - age - extra - 1, 9, 1)
            nd = (dt.date(y - age - extra, 8, 31) - start).days + 1
            first = (start - self._day0).days
            days = [self._day(first + i) for i in range(nd)]
            tab.extend([days[(j * nd) // cnt] for j in range(cnt)])
        self._cohorts[key] = tab
        return tab

    def _counter(self, ci: int) -> array:
        arr = self._counters[ci]
        if arr is None:
            arr = array("H", bytes(4 * self._ndays))
            self._counters[ci] = arr
        return arr

    def id_number(self, county_code: str, birth_date: dt.date, male: bool) -> str:
        """A new resident ID, unique in this run, for a person born in that county on that day."""
        ci = self._county(county_code)
        di = (birth_date - self._day0).days
        if not 0 <= di < self._ndays:
            raise ValueError(f"birth date {birth_date} outside the generator's range")
        idn = self._next_id(ci, self._day(di), male)
        if idn is None:
            raise RuntimeError(f"all ID sequences used for {county_code} {birth_date}")
        return idn

    def _next_id(self, ci: int, day: _DateEntry, male: bool) -> str | None:
        arr = self._counter(ci)
        k = day[3] + male
        c = arr[k]
        if c >= _SEQ_SLOTS:
            return None
        arr[k] = c + 1
        s, sw = self._county_seqs[ci][male][c]
        return f"{self._county_codes[ci]}{day[0]}{s}{ID_CHECK[(self._county_wsum[ci] + day[2] + sw) % 11]}"

    def _id_fallback(self, ci: int, tab: list[_DateEntry], male: bool) -> tuple[str, str]:
        """When a (county, day, gender) is full: other days of the cohort, then other counties."""
        g = self.rng.getrandbits
        for _ in range(32):
            day = tab[g(_DATE_BITS)]
            idn = self._next_id(ci, day, male)
            if idn is not None:
                return idn, day[1]
        n = len(self._county_codes)
        for step in range(1, n):
            for _ in range(8):
                day = tab[g(_DATE_BITS)]
                idn = self._next_id((ci + step) % n, day, male)
                if idn is not None:
                    return idn, day[1]
        raise RuntimeError("ID sequences exhausted: use more counties for this many students")

    def name(self, male: bool) -> str:
        """A Chinese name (common surname + one or two given-name characters)."""
        g = self.rng.getrandbits
        return _SURNAME_TABLE[g(12)] + (_MALE_GIVEN if male else _FEMALE_GIVEN)[g(14)]

    def phone(self) -> str:
        """An 11-digit mainland mobile number 1[3-9]x-xxxx-xxxx."""
        g = self.rng.getrandbits
        return f"{_PHONE_TABLE[g(6)]}{_DIGITS4[g(14)]}{_DIGITS4[g(14)]}"

    def student_no(self, kind: str, area_code: str, birth: str, id_number: str = "") -> str:
        """A 全国学籍号: G + ID number, J + area + birth + seq + check, L + area + birth + 4 digits."""
        if kind == "G":
            return "G" + id_number
        if kind == "J":
            key = area_code + birth
            n = self._j_seq.get(key, 0)
            if n >= 1000:
                return self.student_no("L", area_code, birth)
            self._j_seq[key] = n + 1
            body = f"{key}{n:03d}"
            return "J" + body + id_check_char(body)
        g = self.rng.getrandbits
        while True:
            no = f"L{area_code}{birth}{g(14) % 10_000:04d}"
            if no not in self._l_used:
                self._l_used.add(no)
                return no

    def students(self, school: OrgUnit, n: int) -> Iterator[Student]:
        """n students of a school spread over its stages and grades, in classes."""
        for batch in self._school_batches(school, n, False):
            yield from batch

    def student_batches(self, school: OrgUnit, n: int) -> Iterator[list[Student]]:
        """The students of :meth:`students` in lists of at most 8,192 (cheaper to stream)."""
        return self._school_batches(school, n, False)

    def students_for_tree(self, tree: OrgTree, total: int) -> Iterator[Student]:
        """total students over all schools of the tree, sized by school category."""
        for batch in self._tree_batches(tree, total, False):
            yield from batch

    def student_batches_for_tree(self, tree: OrgTree, total: int) -> Iterator[list[Student]]:
        """The students of :meth:`students_for_tree` in lists (at most one school grade each)."""
        return self._tree_batches(tree, total, False)

    def student_lines_for_tree(self, tree: OrgTree, total: int) -> Iterator[list[str]]:
        """The same students as CSV lines (STUDENT_HEADER order): the fastest way to a file."""
        return self._tree_batches(tree, total, True)

    def _school_batches(self, school: OrgUnit, n: int, lines: bool) -> Iterator[list[Any]]:
        slots = [(s, gr) for s, a, b in school.grades for gr in range(a, b + 1)]
        he_mixed = any(s == "本专科" for s, _ in slots)
        weights = [0.3 if (s == "研究生" and he_mixed) else 1.0 for s, _ in slots]
        for (stage, grade), m in zip(slots, apportion(n, weights), strict=True):
            for start in range(0, m, 8192):
                yield self._grade_rows(school, stage, grade, start, min(8192, m - start), lines)

    def _tree_batches(self, tree: OrgTree, total: int, lines: bool) -> Iterator[list[Any]]:
        size = {m.category: m.students for m in CATEGORY_MIX}
        rng = self.rng
        weights = [size.get(s.category or "", 500) * (0.5 + rng.random()) for s in tree.schools]
        for school, n in zip(tree.schools, apportion(total, weights), strict=True):
            if n:
                yield from self._school_batches(school, n, lines)

    def _grade_rows(
        self, school: OrgUnit, stage: str, grade: int, start: int, m: int, lines: bool
    ) -> list[Any]:
        # The hot loop (aim: >300k rows/s): only locals, one table lookup per random draw.
        g = self.rng.getrandbits
        tab = self._cohort(stage, grade)
        home = self._county(school.region_code or school.parent_code or "")
        origins = self._origins or [home] * 4096
        wide = school.category in ("41", "91")  # universities recruit from everywhere
        codes = self._county_codes
        wsums = self._county_wsum
        counters = self._counters
        seqs = self._county_seqs
        chk = ID_CHECK
        sur = _SURNAME_TABLE
        given_m, given_f = _MALE_GIVEN, _FEMALE_GIVEN
        phones, d4 = _PHONE_TABLE, _DIGITS4
        gender = ("女", "男")
        new = tuple.__new__
        cls = Student
        code = school.code
        sub = ("小学" if grade <= 6 else "初中") if stage == "义务教育" else stage
        board = BOARDING_PER_1024[sub]
        cs = STAGE_CLASS_SIZE[stage]
        k12 = stage not in ("本专科", "研究生")
        he_prefix = f"{self.school_year - grade + 1}{code[-5:]}"
        he_seq = self._he_seq.get(code, 0)
        mid = f"{code},{stage},{grade},"
        out: list[Any] = []
        append = out.append
        for k in range(start, start + m):
            r = g(32)
            male = r & 1
            dc, birth, dw, dk = tab[(r >> 1) & 16383]
            ci = origins[(r >> 19) & 4095] if wide or not (r >> 15) & 15 else home
            arr = counters[ci]
            if arr is None:
                arr = self._counter(ci)
            kk = dk + male
            c = arr[kk]
            if c < 499:
                arr[kk] = c + 1
                s, sw = seqs[ci][male][c]
                idn = f"{codes[ci]}{dc}{s}{chk[(wsums[ci] + dw + sw) % 11]}"
            else:
                idn, birth = self._id_fallback(ci, tab, bool(male))
            x = g(27)
            if not k12:
                he_seq += 1
                sno = f"{he_prefix}{he_seq:06d}"
            elif x >> 22:  # 31 in 32 are G + ID number; the rest J or L
                sno = "G" + idn
            else:
                sno = self.student_no("J" if r >> 31 else "L", codes[home], birth.replace("-", ""))
            name = sur[x & 4095] + (given_m if male else given_f)[g(14)]
            phone = f"{phones[g(6)]}{d4[g(14)]}{d4[g(14)]}"
            boards = 1 if (x >> 12) & 1023 < board else 0
            if lines:  # the CSV line itself: no tuple, no second formatting pass
                append(
                    f"{idn},{sno},{name},{gender[male]},{birth},{phone},{mid}"
                    f"{k // cs + 1},{boards}\n"
                )
            else:
                append(
                    new(
                        cls,
                        (
                            idn,
                            sno,
                            name,
                            gender[male],
                            birth,
                            phone,
                            code,
                            stage,
                            grade,
                            k // cs + 1,
                            boards,
                        ),
                    )
                )
        self._he_seq[code] = he_seq
        return out

    # --- special groups and aid ----------------------------------------------------------------

    def groups_of(self, student: Student, *, rate: float = 0.10) -> list[str]:
        """The special-group codes (often none, sometimes several) a student belongs to."""
        rng = self.rng
        if rng.random() >= rate:
            return []
        u = rng.random()
        k = 1 if u < 0.75 else (2 if u < 0.95 else 3)
        adult = student.stage in ("本专科", "研究生")
        out: list[str] = []
        for _ in range(12):
            code = _GROUP_TABLE[rng.getrandbits(10)]
            if code in out or (adult and code == "10"):  # 事实无人抚养儿童 are under 18
                continue
            out.append(code)
            if len(out) == k:
                break
        return sorted(out)

    def memberships(
        self, student: Student, codes: Collection[str], *, batch: str | None = None
    ) -> list[GroupMember]:
        """GroupMember rows for a student's groups; mostly 下发 (issued), some 自行采集."""
        rng = self.rng
        batch = batch or f"{self.period}-autumn-01"
        y = self.school_year
        return [
            GroupMember(
                student.id_number,
                student.name,
                code,
                _GROUP_NAME[code],
                "下发" if rng.random() < 0.85 else "自行采集",
                batch,
                f"{y}-09-01",
                f"{y + 1}-08-31",
            )
            for code in sorted(codes)
        ]

    def special_groups(
        self, students: Iterable[Student], *, rate: float = 0.10, batch: str | None = None
    ) -> Iterator[GroupMember]:
        """Stream the memberships of about rate of the students (some in several groups)."""
        for s in students:
            codes = self.groups_of(s, rate=rate)
            if codes:
                yield from self.memberships(s, codes, batch=batch)

    def aid_for(self, student: Student, groups: Collection[str] = ()) -> list[AidRecord]:
        """This period's aid records of a student; group members are far more often aided."""
        rng = self.rng
        rand = rng.random
        need = bool(groups)
        picks: list[tuple[AidProject, int]] = []

        def pick(code: str, p_member: float, p_other: float, tier: int | None = None) -> bool:
            if rand() < (p_member if need else p_other):
                proj = AID_PROJECT_BY_CODE[code]
                t = proj.tiers_fen
                if tier is not None:
                    amount = t[tier]
                elif len(t) == 3 and need:
                    amount = t[0] if rand() < 0.45 else t[1]
                else:
                    amount = t[rng.randrange(len(t))]
                picks.append((proj, amount))
                return True
            return False

        stage, grade = student.stage, student.grade
        if stage == "学前":
            pick("XQ01", 0.9, 0.04)
        elif stage == "义务教育":
            junior = grade >= 7
            if student.boarding:
                pick("YW02" if junior else "YW01", 0.92, 0.10)
            else:
                pick("YW04" if junior else "YW03", 0.85, 0.03)
        elif stage == "普高":
            pick("PG01", 0.9, 0.15)
            if need and set(groups) & {"01", "05", "06", "08"}:
                pick("PG02", 0.9, 0.0)
        elif stage == "中职":
            pick("ZZ02", 0.95, 0.9)
            pick("ZZ01", 0.9, 0.12)
            if grade >= 2:
                pick("ZZ03", 0.005, 0.005)
        elif stage == "本专科":
            got = pick("BZ01", 0.9, 0.15)
            if grade >= 2 and not pick("BZ03", 0.002, 0.002) and got:
                pick("BZ02", 0.12, 0.12)
            pick("BZ04", 0.5, 0.08)
        elif stage == "研究生":
            doctoral = 1 if rand() < 0.15 else 0
            pick("YJ01", 0.98, 0.98, doctoral)
            pick("YJ02", 0.01, 0.01, doctoral)
            pick("YJ03", 0.1, 0.05)
        out = []
        for proj, amount in picks:
            for term in TERMS if proj.per_term else TERMS[:1]:
                out.append(
                    AidRecord(
                        student.id_number,
                        student.name,
                        student.school_code,
                        stage,
                        proj.code,
                        self.period,
                        term,
                        amount // 2 if proj.per_term else amount,
                    )
                )
        return out

    def aid_records(
        self, students: Iterable[Student], *, groups: dict[str, Collection[str]] | None = None
    ) -> Iterator[AidRecord]:
        """Stream aid records for students; groups maps id_number to its group codes."""
        groups = groups or {}
        for s in students:
            yield from self.aid_for(s, groups.get(s.id_number, ()))

    def write_dataset(
        self, directory: str | Path, tree: OrgTree, total: int, *, group_rate: float = 0.10
    ) -> dict[str, int]:
        """Write orgs, students, special_groups and aid_records CSVs in one streaming pass."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        counts = {"orgs": write_orgs_csv(d / "orgs.csv", tree)}
        with (
            open(d / "special_groups.csv", "w", encoding="utf-8", newline="") as gf,
            open(d / "aid_records.csv", "w", encoding="utf-8", newline="") as af,
        ):
            gw, aw = csv.writer(gf), csv.writer(af)
            gw.writerow(GROUP_HEADER)
            aw.writerow(AID_HEADER)
            ng = na = 0

            def tap() -> Iterator[list[Student]]:
                nonlocal ng, na
                for batch in self.student_batches_for_tree(tree, total):
                    for s in batch:
                        codes = self.groups_of(s, rate=group_rate)
                        if codes:
                            rows = self.memberships(s, codes)
                            gw.writerows(rows)
                            ng += len(rows)
                        aid = self.aid_for(s, codes)
                        aw.writerows(aid)
                        na += len(aid)
                    yield batch

            counts["students"] = write_csv(d / "students.csv", STUDENT_HEADER, batches=tap())
        counts["special_groups"] = ng
        counts["aid_records"] = na
        return counts
