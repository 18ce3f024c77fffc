"""Org trees of a requested shape: GB/T 2260 provinces, generated cities, counties, schools."""

from __future__ import annotations

import random
from collections.abc import Sequence

from bench.datagen.model import NATIONAL_CODE, OrgTree, OrgUnit
from bench.datagen.tables import (
    CATEGORY_MIX,
    COUNTY_WEIGHTS,
    MUNICIPALITIES,
    PLACE_CHARS,
    PROVINCE_SHORT,
    PROVINCES,
)
from bench.datagen.util import apportion, apportion_bounded

_CN_DIGITS = "零一二三四五六七八九"


def _cn_number(n: int) -> str:
    """1..99 in Chinese numerals (第十二)."""
    if n < 10:
        return _CN_DIGITS[n]
    tens, ones = divmod(n, 10)
    return ("" if tens == 1 else _CN_DIGITS[tens]) + "十" + (_CN_DIGITS[ones] if ones else "")


def build_org_tree(
    rng: random.Random,
    *,
    provinces: int | Sequence[str] = 1,
    counties: int = 100,
    schools: int = 5_000,
    cities: int | None = None,
) -> OrgTree:
    """A tree of exactly the requested numbers of provinces, counties and schools.

    ``provinces`` is a count (picked at random, municipalities only when more than 27 are
    asked for) or a list of 2-digit codes. ``cities`` (city-level units, including the
    市辖区/县 of municipalities) defaults to about one per eight counties. A few counties of
    large provinces are province-administered (``PP90xx``, parent = the province).
    """
    return TreeBuilder(rng).build(
        provinces=provinces, counties=counties, schools=schools, cities=cities
    )


class TreeBuilder:
    """Builds one org tree from a seeded random source."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def build(
        self,
        *,
        provinces: int | Sequence[str] = 1,
        counties: int = 100,
        schools: int = 5_000,
        cities: int | None = None,
    ) -> OrgTree:
        """Build the tree; see :func:`build_org_tree`."""
        rng = self.rng
        prov_codes = self._pick_provinces(provinces)
        if counties < len(prov_codes):
            raise ValueError("need at least one county per province")
        caps = [80 if p in MUNICIPALITIES else 40 * 80 + 99 for p in prov_codes]
        per_prov = apportion_bounded(
            counties, [COUNTY_WEIGHTS[p] for p in prov_codes], [1] * len(prov_codes), caps
        )
        # province-administered counties (PP90xx), "sometimes"
        p90 = []
        for p, c in zip(prov_codes, per_prov, strict=True):
            k = 0
            if p not in MUNICIPALITIES and c >= 20 and rng.random() < 0.3:
                k = rng.randint(1, min(4, c // 20))
            p90.append(k)
        muni_cities = [
            (1 if c <= 20 else 2) if p in MUNICIPALITIES else 0
            for p, c in zip(prov_codes, per_prov, strict=True)
        ]
        rest = [c - k for c, k in zip(per_prov, p90, strict=True)]
        lo = [
            0 if p in MUNICIPALITIES else -(-r // 80) for p, r in zip(prov_codes, rest, strict=True)
        ]
        hi = [
            0 if p in MUNICIPALITIES else min(40, r) for p, r in zip(prov_codes, rest, strict=True)
        ]
        if cities is None:
            want = [
                max(lo_, min(hi_, round(r / 8))) for r, lo_, hi_ in zip(rest, lo, hi, strict=True)
            ]
            want = [max(w, 1) if h else w for w, h in zip(want, hi, strict=True)]
        else:
            want = apportion_bounded(
                cities - sum(muni_cities),
                rest,
                [max(x, 1 if h else 0) for x, h in zip(lo, hi, strict=True)],
                hi,
            )

        national = OrgUnit(NATIONAL_CODE, "全国", "national", None)
        prov_units: list[OrgUnit] = []
        city_units: list[OrgUnit] = []
        county_units: list[OrgUnit] = []
        county_city: dict[str, str | None] = {}
        for i, p in enumerate(prov_codes):
            pcode = p + "0000"
            prov_units.append(OrgUnit(pcode, PROVINCES[p], "province", NATIONAL_CODE))
            used: set[str] = set()
            if p in MUNICIPALITIES:
                c = per_prov[i]
                nd = c if c <= 20 else min(20, -(-c * 7 // 10))
                groups = [("01", "市辖区", nd)] + ([("02", "县", c - nd)] if c > nd else [])
                for cc, cname, m in groups:
                    ccode = f"{p}{cc}00"
                    city_units.append(OrgUnit(ccode, cname, "city", pcode))
                    county_units.extend(self._counties_of(ccode, m, used, county_city))
                continue
            ncity = want[i]
            weights = [0.6 + 0.8 * rng.random() for _ in range(ncity)]
            sizes = apportion_bounded(rest[i], weights, [1] * ncity, [80] * ncity)
            cc_codes = [f"{n:02d}" for n in list(range(1, 21)) + list(range(51, 71))][:ncity]
            for cc, m in zip(cc_codes, sizes, strict=True):
                ccode = f"{p}{cc}00"
                city_units.append(OrgUnit(ccode, self._place(used, "市"), "city", pcode))
                county_units.extend(self._counties_of(ccode, m, used, county_city))
            for j in range(p90[i]):
                code = f"{p}90{j + 1:02d}"
                county_units.append(OrgUnit(code, self._place(used, "市"), "county", pcode))
                county_city[code] = None

        school_units = self._schools(schools, prov_units, county_units, county_city)
        return OrgTree(national, prov_units, city_units, county_units, school_units)

    def _pick_provinces(self, provinces: int | Sequence[str]) -> list[str]:
        if not isinstance(provinces, int):
            codes = sorted(set(provinces))
            unknown = [c for c in codes if c not in PROVINCES]
            if unknown:
                raise ValueError(f"unknown province codes: {unknown}")
            return codes
        if not 1 <= provinces <= len(PROVINCES):
            raise ValueError("provinces must be between 1 and 31")
        plain = [p for p in PROVINCES if p not in MUNICIPALITIES]
        if provinces <= len(plain):
            return sorted(self.rng.sample(plain, provinces))
        extra = self.rng.sample(sorted(MUNICIPALITIES), provinces - len(plain))
        return sorted(plain + extra)

    def _place(self, used: set[str], suffix: str) -> str:
        rng = self.rng
        while True:
            name = rng.choice(PLACE_CHARS) + rng.choice(PLACE_CHARS) + suffix
            if name not in used:
                used.add(name)
                return name

    def _counties_of(
        self, city_code: str, m: int, used: set[str], county_city: dict[str, str | None]
    ) -> list[OrgUnit]:
        """m counties of a city: districts XX 01-20 (区), then counties XX 21-80 (县)."""
        if city_code[2:4] == "01" and city_code[:2] in MUNICIPALITIES:
            nd = m
        elif city_code[2:4] == "02" and city_code[:2] in MUNICIPALITIES:
            nd = 0
        else:
            nd = max(min(20, round(m * 0.3)), 1, m - 60)
        out = []
        for k in range(m):
            if k < nd:
                code, suffix = f"{city_code[:4]}{k + 1:02d}", "区"
            else:
                code, suffix = f"{city_code[:4]}{21 + k - nd:02d}", "县"
            out.append(OrgUnit(code, self._place(used, suffix), "county", city_code))
            county_city[code] = city_code
        return out

    def _schools(
        self,
        n: int,
        provinces: list[OrgUnit],
        counties: list[OrgUnit],
        county_city: dict[str, str | None],
    ) -> list[OrgUnit]:
        rng = self.rng
        per_cat = apportion(n, [m.per_100k for m in CATEGORY_MIX])
        cats = [m.category for m, k in zip(CATEGORY_MIX, per_cat, strict=True) for _ in range(k)]
        rng.shuffle(cats)
        cweights = [0.5 + rng.random() for _ in counties]
        per_county = apportion(n, cweights)
        slots = [c for c, k in zip(counties, per_county, strict=True) for _ in range(k)]
        used_codes: set[str] = set()
        used_names: set[str] = set()
        ordinal: dict[tuple[str, str], int] = {}
        out = []
        for cat, county in zip(cats, slots, strict=True):
            p = county.code[:2]
            code = self._school_code(cat, p, used_codes)
            grades = self._grade_span(cat)
            parent = county.code
            if cat == "41":
                parent = NATIONAL_CODE if rng.random() < 0.05 else p + "0000"
            elif cat == "91":
                parent = NATIONAL_CODE
            elif cat in ("34", "36") and rng.random() < 0.2:
                parent = county_city.get(county.code) or p + "0000"
                if p in MUNICIPALITIES:
                    parent = p + "0000"
            key = (county.code, cat)
            ordinal[key] = ordinal.get(key, 0) + 1
            name = self._school_name(cat, grades, county, ordinal[key], used_names)
            stages = tuple(dict.fromkeys(s for s, _, _ in grades))
            out.append(OrgUnit(code, name, "school", parent, cat, stages, grades, county.code))
        return out

    def _school_code(self, cat: str, province: str, used: set[str]) -> str:
        rng = self.rng
        while True:
            if cat == "41":  # 0 + the old 5-digit higher-education code
                seq = f"0{rng.randrange(10001, 20000)}"
            else:
                seq = f"{rng.randrange(1, 1_000_000):06d}"
            code = cat + province + seq
            if code not in used:
                used.add(code)
                return code

    def _grade_span(self, cat: str) -> tuple[tuple[str, int, int], ...]:
        u = self.rng.random()
        match cat:
            case "11":
                return (("学前", 1, 3),)
            case "21":
                return (("学前", 3, 3), ("义务教育", 1, 6)) if u < 0.08 else (("义务教育", 1, 6),)
            case "31":
                return (("义务教育", 1, 9),) if u < 0.2 else (("义务教育", 7, 9),)
            case "34":
                return (("义务教育", 7, 9), ("普高", 1, 3)) if u < 0.3 else (("普高", 1, 3),)
            case "36":
                return (("中职", 1, 3),)
            case "41":
                return (("本专科", 1, 4), ("研究生", 1, 3)) if u < 0.3 else (("本专科", 1, 4),)
            case "51":
                return (("义务教育", 1, 9),)
            case "91":
                return (("研究生", 1, 3),)
        raise ValueError(f"no grade span for category {cat}")

    def _school_name(
        self,
        cat: str,
        grades: tuple[tuple[str, int, int], ...],
        county: OrgUnit,
        nth: int,
        used: set[str],
    ) -> str:
        rng = self.rng
        if cat in ("41", "91"):
            short = PROVINCE_SHORT[county.code[:2]]
            suffix = (
                "研究所"
                if cat == "91"
                else rng.choice(("大学", "学院", "师范学院", "职业技术学院", "医科大学"))
            )
            for _ in range(50):
                name = short + rng.choice(PLACE_CHARS) + rng.choice(PLACE_CHARS) + suffix
                if name not in used:
                    break
            else:
                name = f"{short}第{nth}{suffix}"
            used.add(name)
            return name
        suffix = {
            "11": "幼儿园",
            "21": "小学",
            "31": "中学" if grades[0][1] == 7 else "学校",
            "34": "中学" if len(grades) > 1 else "高级中学",
            "36": "职业技术学校",
            "51": "特殊教育学校",
        }[cat]
        if rng.random() < 0.5 and nth < 100:
            name = f"{county.name}第{_cn_number(nth)}{suffix}"
        else:
            name = f"{county.name[:-1]}{rng.choice(PLACE_CHARS)}{rng.choice(PLACE_CHARS)}{suffix}"
        if name in used:
            name = f"{county.name}{nth}号{suffix}"
        used.add(name)
        return name
