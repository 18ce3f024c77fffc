"""Rules over approved records (R01–R07, R11): each returns the hits of one period in scope."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from reconcile_service.domain.periods import AUTUMN, SPRING
from reconcile_service.domain.rules import AGE_RANGE, ERROR, WARNING, Hit, fingerprint, yuan
from reconcile_service.repository.comparison import _ENROLLED
from reconcile_service.repository.verification.base import (
    LEVEL_NAMES,
    STAGE_NAMES,
    RuleScope,
    rows_of,
)


async def r01_multi_school(session: AsyncSession, s: RuleScope) -> list[Hit]:
    """R01: one student, project and period approved at two or more schools (nationally)."""
    rows = await rows_of(
        session,
        """
        SELECT r.student_key, r.project_code, r.record_id, r.school_org_code, r.school_org_path,
               st.student_id
        FROM aid_record r
        JOIN student st ON st.student_key = r.student_key
        JOIN (SELECT student_key, project_code FROM aid_record
              WHERE period_key = :period_key AND status = 5
              GROUP BY student_key, project_code
              HAVING COUNT(DISTINCT school_org_code) > 1) d
          ON d.student_key = r.student_key AND d.project_code = r.project_code
        WHERE r.period_key = :period_key AND r.status = 5
        ORDER BY r.record_id
        """,
        s.params,
    )
    groups: dict[tuple, list[Any]] = defaultdict(list)
    for row in rows:
        groups[(row["student_key"], row["project_code"])].append(row)
    hits = []
    for (student_key, project_code), recs in groups.items():
        schools = sorted({r["school_org_code"] for r in recs})
        ids = [r["record_id"] for r in recs]
        seen: set[str] = set()
        for r in recs:
            if r["school_org_code"] in seen or not s.contains(r["school_org_path"]):
                continue
            seen.add(r["school_org_code"])
            hits.append(
                Hit(
                    "R01",
                    fingerprint(
                        "R01", s.period_key, student_key, project_code, r["school_org_code"]
                    ),
                    r["school_org_code"],
                    r["school_org_path"],
                    f"该学生本周期在{len(schools)}所学校（{'、'.join(schools)}）获同一项目资助",
                    student_key=student_key,
                    student_id=r["student_id"],
                    project_code=project_code,
                    record_ids=ids,
                    facts={"schools": ",".join(schools)},
                )
            )
    return hits


async def r02_duplicate(session: AsyncSession, s: RuleScope) -> list[Hit]:
    """R02: the same student, project and period approved twice at one school."""
    rows = await rows_of(
        session,
        f"""
        SELECT r.student_key, r.project_code, r.school_org_code, MAX(r.school_org_path) AS path,
               MAX(st.student_id) AS student_id, COUNT(*) AS n
        FROM aid_record r JOIN student st ON st.student_key = r.student_key
        WHERE r.period_key = :period_key AND r.status = 5 {s.where_scope("r.school_org_path")}
        GROUP BY r.student_key, r.project_code, r.school_org_code
        HAVING COUNT(*) > 1
        """,
        s.params,
    )
    hits = []
    for row in rows:
        ids = await _record_ids(
            session, s, row["student_key"], row["project_code"], row["school_org_code"]
        )
        hits.append(
            Hit(
                "R02",
                fingerprint(
                    "R02",
                    s.period_key,
                    row["student_key"],
                    row["project_code"],
                    row["school_org_code"],
                ),
                row["school_org_code"],
                row["path"],
                f"同一学生在本校本周期获同一项目资助{row['n']}次",
                student_key=row["student_key"],
                student_id=row["student_id"],
                project_code=row["project_code"],
                record_ids=ids,
                facts={"count": str(row["n"])},
            )
        )
    return hits


async def _record_ids(
    session: AsyncSession, s: RuleScope, student_key: int, project_code: str, school: str
) -> list[str]:
    rows = await session.execute(
        text(
            "SELECT record_id FROM aid_record WHERE period_key = :p AND status = 5 "
            "AND student_key = :s AND project_code = :c AND school_org_code = :o ORDER BY record_id"
        ),
        {"p": s.period_key, "s": student_key, "c": project_code, "o": school},
    )
    return list(rows.scalars())


async def r03_amount(session: AsyncSession, s: RuleScope) -> list[Hit]:
    """R03: an amount that is no tier of the project (nor within its custom range)."""
    rows = await rows_of(
        session,
        f"""
        SELECT r.record_id, r.student_key, st.student_id, r.project_code, r.amount_fen,
               r.school_org_code, r.school_org_path, p.allow_custom_amount,
               p.min_amount_fen, p.max_amount_fen
        FROM aid_record r
        JOIN project p ON p.project_code = r.project_code
        JOIN student st ON st.student_key = r.student_key
        WHERE r.period_key = :period_key AND r.status = 5 {s.where_scope("r.school_org_path")}
          AND (p.allow_custom_amount
               OR EXISTS (SELECT 1 FROM project_tier t WHERE t.project_code = p.project_code))
          AND NOT EXISTS (SELECT 1 FROM project_tier t
                          WHERE t.project_code = r.project_code AND t.amount_fen = r.amount_fen)
          AND NOT (p.allow_custom_amount
                   AND r.amount_fen BETWEEN p.min_amount_fen AND p.max_amount_fen)
        """,
        s.params,
    )
    tiers: dict[str, list[int]] = defaultdict(list)
    codes = sorted({r["project_code"] for r in rows})
    if codes:
        for code, amount in (
            await session.execute(
                text("SELECT project_code, amount_fen FROM project_tier ORDER BY amount_fen")
            )
        ).all():
            if code in codes:
                tiers[code].append(amount)
    hits = []
    for r in rows:
        allowed = "、".join(yuan(a) for a in tiers[r["project_code"]])
        if r["allow_custom_amount"]:
            extra = f"{yuan(r['min_amount_fen'])}～{yuan(r['max_amount_fen'])}"
            allowed = f"{allowed}或{extra}" if allowed else extra
        hits.append(
            Hit(
                "R03",
                fingerprint("R03", r["record_id"], r["amount_fen"]),
                r["school_org_code"],
                r["school_org_path"],
                f"资助金额{yuan(r['amount_fen'])}不在项目标准内（标准：{allowed}）",
                student_key=r["student_key"],
                student_id=r["student_id"],
                project_code=r["project_code"],
                record_ids=[r["record_id"]],
                facts={
                    "amount_fen": str(r["amount_fen"]),
                    "allowed_tiers": ",".join(str(a) for a in tiers[r["project_code"]]),
                },
            )
        )
    return hits


async def r04_not_enrolled(session: AsyncSession, s: RuleScope) -> list[Hit]:
    """R04: aided at a school where 学籍 shows the student not enrolled during the period."""
    rows = await rows_of(
        session,
        f"""
        SELECT r.record_id, r.student_key, st.student_id, r.project_code, r.school_org_code,
               r.school_org_path,
               (SELECT MAX(e2.status) FROM enrollment e2
                 WHERE e2.student_key = r.student_key AND e2.school_org_code = r.school_org_code)
                 AS status
        FROM aid_record r JOIN student st ON st.student_key = r.student_key
        WHERE r.period_key = :period_key AND r.status = 5 {s.where_scope("r.school_org_path")}
          AND st.registered
          AND NOT EXISTS (
            SELECT 1 FROM enrollment e
            WHERE e.student_key = r.student_key AND e.school_org_code = r.school_org_code
              AND (r.stage = 0 OR e.stage = r.stage) AND {_ENROLLED})
        """,
        s.params,
    )
    names = {1: "在籍在校", 2: "在籍不在校", 3: "休学", 4: "退学", 5: "毕业", 6: "转出", 7: "死亡"}
    return [
        Hit(
            "R04",
            fingerprint("R04", r["record_id"]),
            r["school_org_code"],
            r["school_org_path"],
            "资助周期内该学生不在本校就读（学籍状态："
            + (names.get(r["status"], "无本校学籍") if r["status"] else "无本校学籍")
            + "）",
            student_key=r["student_key"],
            student_id=r["student_id"],
            project_code=r["project_code"],
            record_ids=[r["record_id"]],
            facts={"student_status": str(r["status"] or 0)},
        )
        for r in rows
    ]


async def r05_identity(session: AsyncSession, s: RuleScope) -> list[Hit]:
    """R05: no 学籍 record, the record's ID number or name differs from 学籍's, or an impossible
    birth date (malformed, in the future, or an age the stage cannot have)."""
    # Plausible birth dates per stage as ISO strings, so the database compares text only.
    bounds: dict[str, Any] = {}
    ages = []
    for stage, (low, high) in AGE_RANGE.items():
        bounds[f"b{stage}min"] = date(s.period.first_year - high - 1, 9, 2).isoformat()
        bounds[f"b{stage}max"] = date(s.period.first_year - low, 9, 1).isoformat()
        ages.append(
            f"(r.stage = {stage} AND st.birth_date NOT BETWEEN :b{stage}min AND :b{stage}max)"
        )
    rows = await rows_of(
        session,
        f"""
        SELECT r.record_id, r.student_key, st.student_id, r.project_code, r.school_org_code,
               r.school_org_path, r.stage, r.id_number_blind_index AS record_index,
               st.id_number_blind_index AS student_index, st.registered, st.birth_date,
               r.student_name AS record_name, st.name AS student_name
        FROM aid_record r JOIN student st ON st.student_key = r.student_key
        WHERE r.period_key = :period_key AND r.status = 5 {s.where_scope("r.school_org_path")}
          AND (NOT st.registered
               OR (r.id_number_blind_index <> '' AND st.id_number_blind_index <> ''
                   AND r.id_number_blind_index <> st.id_number_blind_index)
               OR (r.student_name <> '' AND st.name <> '' AND r.student_name <> st.name)
               OR st.birth_date NOT LIKE '____-__-__' OR st.birth_date > :as_of
               OR {" OR ".join(ages)})
        """,
        {**s.params, **bounds},
    )
    hits = []
    for r in rows:
        problem, kind = _identity_problem(r, s)
        if problem:
            hits.append(
                Hit(
                    "R05",
                    fingerprint("R05", r["record_id"], kind),
                    r["school_org_code"],
                    r["school_org_path"],
                    problem,
                    student_key=r["student_key"],
                    student_id=r["student_id"],
                    project_code=r["project_code"],
                    record_ids=[r["record_id"]],
                    facts={"check": kind, "birth_date": r["birth_date"] or ""},
                )
            )
    return hits


def _identity_problem(r: Any, s: RuleScope) -> tuple[str, str]:
    if not r["registered"]:
        return "学籍系统中无该学生信息", "NO_STUDENT_RECORD"
    if r["record_index"] and r["student_index"] and r["record_index"] != r["student_index"]:
        return "资助名单身份证件号码与学籍不一致", "ID_NUMBER_MISMATCH"
    record_name, student_name = _name(r["record_name"]), _name(r["student_name"])
    if record_name and student_name and record_name != student_name:
        return f"资助名单姓名（{record_name}）与学籍姓名（{student_name}）不一致", "NAME_MISMATCH"
    born = _parse(r["birth_date"])
    if born is None:
        return "学籍出生日期缺失或无效", "BIRTH_DATE_INVALID"
    if born > s.as_of:
        return "出生日期晚于资助周期", "BIRTH_DATE_FUTURE"
    low_high = AGE_RANGE.get(r["stage"] or 0)
    if low_high:
        start = date(s.period.first_year, 9, 1)
        age = start.year - born.year - ((start.month, start.day) < (born.month, born.day))
        if not low_high[0] <= age <= low_high[1]:
            stage = STAGE_NAMES.get(r["stage"], "")
            return f"年龄{age}岁与学段（{stage}）不符", "AGE_STAGE_MISMATCH"
    return "", ""


def _name(value: str | None) -> str:
    """A name as compared: no spaces, one form of the middle dot of minority and foreign names."""
    text = "".join((value or "").split())
    for dot in ("•", "・", "．", "‧", "⋅", "•"):
        text = text.replace(dot, "·")
    return text


def _parse(value: str | None) -> date | None:
    try:
        return date.fromisoformat((value or "")[:10])
    except ValueError:
        return None


async def r06_exclusive(session: AsyncSession, s: RuleScope) -> list[Hit]:
    """R06: two approved records of mutually exclusive projects in one school year (or term)."""
    rows = await rows_of(
        session,
        f"""
        SELECT r1.record_id AS id1, r2.record_id AS id2, r1.student_key, st.student_id,
               r1.project_code AS code1, r2.project_code AS code2, x.scope,
               r1.school_org_code, r1.school_org_path
        FROM aid_record r1
        JOIN aid_record r2 ON r2.student_key = r1.student_key AND r2.status = 5
                          AND r2.record_id <> r1.record_id
        JOIN project_exclusion x
          ON (x.project_code = r1.project_code AND x.other_project_code = r2.project_code)
          OR (x.project_code = r2.project_code AND x.other_project_code = r1.project_code)
        JOIN period p2 ON p2.period_key = r2.period_key
        JOIN student st ON st.student_key = r1.student_key
        WHERE r1.period_key = :period_key AND r1.status = 5 {s.where_scope("r1.school_org_path")}
          AND p2.school_year = :school_year
          AND (x.scope = 1 OR p2.term = :term)
        """,
        s.params,
    )
    hits: dict[str, Hit] = {}
    for r in rows:
        ids = sorted([r["id1"], r["id2"]])
        fp = fingerprint("R06", *ids)
        if fp in hits:
            continue
        scope = "同一学年" if r["scope"] == 1 else "同一学期"
        hits[fp] = Hit(
            "R06",
            fp,
            r["school_org_code"],
            r["school_org_path"],
            f"{scope}同时享受互斥资助项目（{r['code1']}、{r['code2']}）",
            student_key=r["student_key"],
            student_id=r["student_id"],
            project_code=r["code1"],
            record_ids=ids,
            facts={"projects": f"{r['code1']},{r['code2']}"},
        )
    return list(hits.values())


async def r07_recognition(session: AsyncSession, s: RuleScope) -> list[Hit]:
    """R07: an approved 助困 record without a hardship recognition for the school year (warning),
    or with a level of 不困难 or below the project's minimum (error)."""
    spring = "AND :term = 2" if s.period.term == SPRING else "AND 1 = 0"
    rows = await rows_of(
        session,
        f"""
        SELECT r.record_id, r.student_key, st.student_id, r.project_code, r.school_org_code,
               r.school_org_path, COALESCE(p.min_hardship_level, 0) AS min_level,
               COALESCE(rs.level, ra.level) AS level
        FROM aid_record r
        JOIN student st ON st.student_key = r.student_key
        LEFT JOIN project p ON p.project_code = r.project_code
        LEFT JOIN recognition ra ON ra.student_key = r.student_key
             AND ra.school_year = :school_year AND ra.term = {AUTUMN}
        LEFT JOIN recognition rs ON rs.student_key = r.student_key
             AND rs.school_year = :school_year AND rs.term = {SPRING} {spring}
        WHERE r.period_key = :period_key AND r.status = 5 AND r.category = 1
          {s.where_scope("r.school_org_path")}
          AND (COALESCE(rs.level, ra.level, 0) IN (0, 4)
               OR (COALESCE(p.min_hardship_level, 0) > 0
                   AND COALESCE(rs.level, ra.level) > p.min_hardship_level))
        """,
        s.params,
    )
    hits = []
    for r in rows:
        level = r["level"] or 0
        if level == 0:
            summary, severity = "助困类资助学生无本学年家庭经济困难认定", WARNING
        elif level == 4:
            summary, severity = "助困类资助学生认定为不困难", ERROR
        else:
            need = LEVEL_NAMES.get(r["min_level"], "")
            summary = f"困难认定档次（{LEVEL_NAMES.get(level, '')}）低于项目要求（{need}）"
            severity = ERROR
        hits.append(
            Hit(
                "R07",
                fingerprint("R07", r["record_id"], level),
                r["school_org_code"],
                r["school_org_path"],
                summary,
                severity=severity,
                student_key=r["student_key"],
                student_id=r["student_id"],
                project_code=r["project_code"],
                record_ids=[r["record_id"]],
                facts={"hardship_level": str(level)},
            )
        )
    return hits


async def r11_stage(session: AsyncSession, s: RuleScope) -> list[Hit]:
    """R11: a record of a stage its school does not serve."""
    rows = await rows_of(
        session,
        f"""
        SELECT r.record_id, r.student_key, st.student_id, r.project_code, r.stage,
               r.school_org_code, r.school_org_path, o.stages
        FROM aid_record r
        JOIN org o ON o.org_code = r.school_org_code
        JOIN student st ON st.student_key = r.student_key
        WHERE r.period_key = :period_key AND r.status = 5 {s.where_scope("r.school_org_path")}
          AND o.level = 5 AND o.stages <> '' AND r.stage <> 0
          AND o.stages NOT LIKE '%,' || CAST(r.stage AS VARCHAR(2)) || ',%'
        """,
        s.params,
    )
    return [
        Hit(
            "R11",
            fingerprint("R11", r["record_id"]),
            r["school_org_code"],
            r["school_org_path"],
            f"学校不设{STAGE_NAMES.get(r['stage'], '该')}学段",
            student_key=r["student_key"],
            student_id=r["student_id"],
            project_code=r["project_code"],
            record_ids=[r["record_id"]],
            facts={"stage": str(r["stage"]), "school_stages": r["stages"].strip(",")},
        )
        for r in rows
    ]
