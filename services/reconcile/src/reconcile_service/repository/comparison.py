"""The comparison (数据比对) as set-based SQL inside the database.

For one period, in the caller's transaction:

1. candidates: special-group students whose memberships hold on the as-of day and who are
   enrolled in the period (one row per student: the school it is enrolled at, its groups as bit
   masks), each flagged funded when the funded set (approved 助困 records of the period,
   maintained on ingest) holds it — an anti-join on integer keys. They are kept in `candidate`,
   the population as of the last run;
2. the entries diff: open the new, reopen the returning, refresh changed groups or schools,
   close the funded (FUNDED) and those no longer eligible (NOT_ELIGIBLE). Only rows that change
   are written;
3. the statistics snapshot per school × stage × group × source;
4. autumn-2023 reasons of the retired report carried into entries that have none.

Two modes with the same result:
- **full**: every student of a scope (a subtree of schools, or the whole tree);
- **incremental**: only the students that changed since the last run over the whole tree —
  those the consumers marked (`dirty_student`: memberships, enrolments, funded set) and those
  whose memberships or enrolments start or end between the previous as-of day and this one —
  with the statistics recomputed for the schools they belong to (before or after).

Re-running with the same read copy yields the same entries: the run is idempotent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from reconcile_service.repository.sql import dialect

OPEN, FUNDED, NOT_ELIGIBLE = 1, 2, 3
DIRTY = "cmp_dirty"  # students an incremental pass re-examines
OLD = "cmp_old"  # the candidates an incremental pass replaces, for the statistics' deltas
GROUP_TABLE = "cmp_group"


@dataclass
class ComparisonCounts:
    """What one period's comparison did."""

    students_checked: int = 0
    students_funded: int = 0
    opened: int = 0
    closed: int = 0
    reopened: int = 0
    open_after: int = 0
    carried_over: int = 0
    # Students re-examined (all of the scope in a full pass).
    examined: int = 0
    incremental: bool = False


def scope_pattern(path: str) -> str:
    """LIKE pattern (escape character "!") matching a path and everything below it."""
    return path.replace("!", "!!").replace("%", "!%").replace("_", "!_") + "%"


def _scope(column: str) -> str:
    return f"{column} LIKE :scope ESCAPE '!'"


_ENROLLED = """
    (e.enrolled_on = '' OR e.enrolled_on <= :as_of)
    AND (
      (e.status IN (1, 2) AND (e.left_on = '' OR e.left_on >= :starts_on))
      OR (e.status IN (3, 4, 5, 6, 7) AND e.left_on <> '' AND e.left_on >= :starts_on)
    )
"""

_MEMBERSHIP_HOLDS = """
    m.school_org_path IS NOT NULL
    AND m.special_group BETWEEN 1 AND 13
    AND m.verification <> 3
    AND (m.valid_from = '' OR m.valid_from <= :as_of)
    AND (m.valid_to = '' OR m.valid_to >= :as_of)
    AND (m.ended_on IS NULL OR m.ended_on > :as_of)
"""

CANDIDATE_COLUMNS = (
    "student_key, school_org_code, school_org_path, school_name, stage, grade, class_name, "
    "groups_mask, issued_mask, self_mask, funded"
)


def candidates_select(dialect_name: str, *, scoped: bool, dirty: bool) -> str:
    """SELECT of the candidates (CANDIDATE_COLUMNS) of a period: of a scope, or of the
    students listed in the DIRTY temp table."""
    scope = f"AND {_scope('e.school_org_path')}" if scoped else ""
    # Restricted to the dirty students, both sides probe their primary-key indexes instead of
    # scanning memberships and enrolments.
    # (enrolments are joined to pop, already restricted to them).
    only = f"AND m.student_key IN (SELECT student_key FROM {DIRTY})" if dirty else ""
    if dialect_name == "postgresql":
        agg = "bit_or({})"
        enr = f"""
          SELECT DISTINCT ON (e.student_key)
                 e.student_key, e.school_org_code, e.school_org_path, e.school_name, e.stage,
                 e.grade, e.class_name
          FROM enrollment e JOIN pop p ON p.student_key = e.student_key
          WHERE {_ENROLLED} {scope}
          ORDER BY e.student_key, (e.status IN (1, 2)) DESC, e.enrolled_on DESC, e.stage DESC
        """
    else:
        # SQLite has no bit_or: the distinct bit values of a student sum to their OR.
        agg = "SUM(DISTINCT {})"
        enr = f"""
          SELECT student_key, school_org_code, school_org_path, school_name, stage, grade,
                 class_name
          FROM (
            SELECT e.*, ROW_NUMBER() OVER (
                     PARTITION BY e.student_key
                     ORDER BY (e.status IN (1, 2)) DESC, e.enrolled_on DESC, e.stage DESC
                   ) AS rn
            FROM enrollment e JOIN pop p ON p.student_key = e.student_key
            WHERE {_ENROLLED} {scope}
          ) ranked
          WHERE rn = 1
        """
    bit = "1 << (m.special_group - 1)"
    if dialect_name == "postgresql" and not dirty:
        return _full_select_pg(scope, bit)
    if dialect_name == "postgresql":
        return _dirty_select_pg(bit)
    pop = f"""
      SELECT m.student_key,
             {agg.format(bit)} AS groups_mask,
             {agg.format(f"CASE WHEN m.source = 1 THEN {bit} ELSE 0 END")} AS issued_mask,
             {agg.format(f"CASE WHEN m.source = 2 THEN {bit} ELSE 0 END")} AS self_mask
      FROM membership m
      WHERE {_MEMBERSHIP_HOLDS} {only}
      GROUP BY m.student_key
    """
    return f"""
      WITH pop AS ({pop}), enr AS ({enr})
      SELECT enr.student_key, enr.school_org_code, enr.school_org_path, enr.school_name,
             enr.stage, enr.grade, enr.class_name,
             pop.groups_mask, pop.issued_mask, pop.self_mask,
             CASE WHEN f.student_key IS NULL THEN 0 ELSE 1 END AS funded
      FROM pop
      JOIN enr ON enr.student_key = pop.student_key
      LEFT JOIN funded_student f ON f.period_key = :period_key AND f.student_key = pop.student_key
    """


def _full_select_pg(scope: str, bit: str) -> str:
    # Every student of a scope, PostgreSQL: no CTE fences, so the planner hashes the (smaller)
    # population and walks enrolments and memberships in student order (merge semi-join over
    # their student-key indexes) instead of hashing every enrolment.
    return f"""
      SELECT enr.student_key, enr.school_org_code, enr.school_org_path, enr.school_name,
             enr.stage, enr.grade, enr.class_name,
             pop.groups_mask, pop.issued_mask, pop.self_mask,
             CASE WHEN f.student_key IS NULL THEN 0 ELSE 1 END AS funded
      FROM (
        SELECT m.student_key,
               bit_or({bit}) AS groups_mask,
               bit_or(CASE WHEN m.source = 1 THEN {bit} ELSE 0 END) AS issued_mask,
               bit_or(CASE WHEN m.source = 2 THEN {bit} ELSE 0 END) AS self_mask
        FROM membership m
        WHERE {_MEMBERSHIP_HOLDS}
        GROUP BY m.student_key
      ) pop
      JOIN (
        SELECT DISTINCT ON (e.student_key)
               e.student_key, e.school_org_code, e.school_org_path, e.school_name, e.stage,
               e.grade, e.class_name
        FROM enrollment e
        WHERE {_ENROLLED} {scope}
          AND EXISTS (SELECT 1 FROM membership m
                      WHERE m.student_key = e.student_key AND {_MEMBERSHIP_HOLDS})
        ORDER BY e.student_key, (e.status IN (1, 2)) DESC, e.enrolled_on DESC, e.stage DESC
      ) enr ON enr.student_key = pop.student_key
      LEFT JOIN funded_student f ON f.period_key = :period_key AND f.student_key = pop.student_key
    """


def _dirty_select_pg(bit: str) -> str:
    # The dirty students, PostgreSQL: their memberships, their enrolment and their funded flag
    # each looked up by student key (index probes), whatever the planner would guess for a
    # join with the whole enrolment or funded tables — the cost follows the day's changes.
    return f"""
      WITH pop AS (
        SELECT m.student_key,
               bit_or({bit}) AS groups_mask,
               bit_or(CASE WHEN m.source = 1 THEN {bit} ELSE 0 END) AS issued_mask,
               bit_or(CASE WHEN m.source = 2 THEN {bit} ELSE 0 END) AS self_mask
        FROM {DIRTY} d JOIN membership m ON m.student_key = d.student_key
        WHERE {_MEMBERSHIP_HOLDS}
        GROUP BY m.student_key
      )
      SELECT enr.student_key, enr.school_org_code, enr.school_org_path, enr.school_name,
             enr.stage, enr.grade, enr.class_name,
             pop.groups_mask, pop.issued_mask, pop.self_mask,
             COALESCE((SELECT 1 FROM funded_student f
                       WHERE f.period_key = :period_key AND f.student_key = pop.student_key
                       LIMIT 1), 0) AS funded
      FROM pop
      JOIN LATERAL (
        SELECT e.student_key, e.school_org_code, e.school_org_path, e.school_name, e.stage,
               e.grade, e.class_name
        FROM enrollment e
        WHERE e.student_key = pop.student_key AND {_ENROLLED}
        ORDER BY (e.status IN (1, 2)) DESC, e.enrolled_on DESC, e.stage DESC
        LIMIT 1
      ) enr ON true
    """


def _contribution(source: str, sign: int, where: str, *, on_dirty: bool = False) -> str:
    """Rows (school, stage, group, source mask, path, sign, funded) a candidate adds to the
    statistics: one for all groups (0) and one per group it is in."""
    # Driven from the dirty students (index probes into candidate), not a scan of candidate.
    join = " ON c.period_key = :period_key AND c.student_key = d.student_key" if on_dirty else ""
    return f"""
    SELECT c.school_org_code, c.stage, g.g AS special_group,
           CASE WHEN g.g = 0
                THEN (CASE WHEN c.issued_mask <> 0 THEN 1 ELSE 0 END)
                     + (CASE WHEN c.self_mask <> 0 THEN 2 ELSE 0 END)
                ELSE ((c.issued_mask >> (g.g - 1)) & 1) + 2 * ((c.self_mask >> (g.g - 1)) & 1)
           END AS source_mask,
           c.school_org_path, {sign} AS sign, {sign} * c.funded AS funded
    FROM {source} c{join} JOIN {GROUP_TABLE} g ON g.g = 0 OR (c.groups_mask & g.bit) <> 0
    WHERE {where}"""


def _stats_delta() -> str:
    new = _contribution(f"{DIRTY} d JOIN candidate", 1, "1 = 1", on_dirty=True)
    old = _contribution(OLD, -1, "1 = 1")
    return f"""
    INSERT INTO population_stat (period_key, school_org_code, stage, special_group, source_mask,
                                 school_org_path, students, funded)
    SELECT :period_key, school_org_code, stage, special_group, source_mask,
           MAX(school_org_path), SUM(sign), SUM(funded)
    FROM ({new} UNION ALL {old}) d
    WHERE 1 = 1
    GROUP BY school_org_code, stage, special_group, source_mask
    HAVING SUM(sign) <> 0 OR SUM(funded) <> 0
    ON CONFLICT (period_key, school_org_code, stage, special_group, source_mask)
    DO UPDATE SET students = population_stat.students + excluded.students,
                  funded = population_stat.funded + excluded.funded,
                  school_org_path = excluded.school_org_path
    """


def _stats_insert(source_filter: str) -> str:
    return f"""
    INSERT INTO population_stat (period_key, school_org_code, stage, special_group, source_mask,
                                 school_org_path, students, funded)
    SELECT :period_key, c.school_org_code, c.stage, g.g,
           CASE WHEN g.g = 0
                THEN (CASE WHEN c.issued_mask <> 0 THEN 1 ELSE 0 END)
                     + (CASE WHEN c.self_mask <> 0 THEN 2 ELSE 0 END)
                ELSE ((c.issued_mask >> (g.g - 1)) & 1) + 2 * ((c.self_mask >> (g.g - 1)) & 1)
           END,
           MAX(c.school_org_path), COUNT(*), SUM(c.funded)
    FROM candidate c JOIN {GROUP_TABLE} g ON g.g = 0 OR (c.groups_mask & g.bit) <> 0
    WHERE c.period_key = :period_key {source_filter}
    GROUP BY 2, 3, 4, 5
    """


_CHANGED = """
    (u.school_org_code <> c.school_org_code OR u.stage <> c.stage
     OR u.groups_mask <> c.groups_mask OR u.issued_mask <> c.issued_mask
     OR u.self_mask <> c.self_mask OR u.grade <> c.grade OR u.class_name <> c.class_name
     OR u.school_name <> c.school_name OR u.school_org_path <> c.school_org_path)
"""

_SET_FROM_CAND = """
    school_org_code = c.school_org_code, school_org_path = c.school_org_path,
    school_name = c.school_name, stage = c.stage, grade = c.grade, class_name = c.class_name,
    groups_mask = c.groups_mask, issued_mask = c.issued_mask, self_mask = c.self_mask
"""


async def compare_period(
    session: AsyncSession,
    *,
    period_key: int,
    starts_on: date,
    as_of: date,
    scope_path: str,
    run_id: str,
    now: datetime,
    carry_period_key: int | None,
    incremental: bool = False,
) -> ComparisonCounts:
    """Compare one period — every student of a scope, or (incremental) only the students in
    the DIRTY temp table — and bring its candidates, entries and statistics up to date."""
    name = dialect(session)
    scoped = scope_path != "/" and not incremental
    params = {
        "period_key": period_key,
        "starts_on": starts_on.isoformat(),
        "as_of": as_of.isoformat(),
        "scope": scope_pattern(scope_path),
        "run_id": run_id,
        "now": now,
    }
    run = session.execute
    if name == "postgresql":
        # One comparison per period at a time across replicas; memory for the hash steps.
        await run(text("SELECT pg_advisory_xact_lock(:k)"), {"k": 0x52430000 + period_key})
        await run(text("SET LOCAL work_mem = '256MB'"))
        # Compiling these one-off statements costs more than it saves (hundreds of ms each).
        await run(text("SET LOCAL jit = off"))
    await _ensure_group_table(session, name)
    counts = ComparisonCounts(incremental=incremental)
    if incremental and name == "postgresql":
        # The dirty set is a small share of the list by construction (else the pass is a full
        # one): every statement of the pass probes by student key — memberships, enrolments,
        # funded set, candidates, entries — rather than scanning, which the planner may pick
        # when statistics lag behind the day's changes. Restored before the carry-over.
        await run(text("SET LOCAL enable_hashjoin = off"))
        await run(text("SET LOCAL enable_mergejoin = off"))
    if incremental:
        # What the re-examined students contributed so far (their statistics' deltas).
        await run(text(f"DROP TABLE IF EXISTS {OLD}"))
        await run(
            text(f"""
            CREATE TEMP TABLE {OLD} AS
            SELECT c.* FROM {DIRTY} d
            JOIN candidate c ON c.period_key = :period_key AND c.student_key = d.student_key"""),
            params,
        )
        await run(
            text(f"""
            DELETE FROM candidate WHERE period_key = :period_key
              AND student_key IN (SELECT student_key FROM {DIRTY})"""),
            params,
        )
        counts.examined = int((await run(text(f"SELECT COUNT(*) FROM {DIRTY}"))).scalar_one())
    else:
        scope_c = f"AND {_scope('school_org_path')}" if scoped else ""
        await run(text(f"DELETE FROM candidate WHERE period_key = :period_key {scope_c}"), params)
    inserted = await run(
        text(
            f"INSERT INTO candidate (period_key, {CANDIDATE_COLUMNS}) "
            f"SELECT :period_key, {CANDIDATE_COLUMNS} FROM ("
            f"{candidates_select(name, scoped=scoped, dirty=incremental)}) x"
        ),
        params,
    )
    if not incremental:
        counts.examined = inserted.rowcount or 0
    if name == "postgresql" and not incremental:
        await run(text("ANALYZE candidate"))

    # The students this pass looked at: the scope's, or the dirty ones.
    # Incremental passes drive every statement from the dirty set (index probes into candidate
    # and entries), so their cost follows the changes, not the size of the list.
    if incremental:
        cand_from = (
            f"{DIRTY} d JOIN candidate c "
            "ON c.period_key = :period_key AND c.student_key = d.student_key"
        )
        mine_c = "1 = 1"
        mine_u = f"u.student_key IN (SELECT student_key FROM {DIRTY})"
    else:
        cand_from = "candidate c"
        mine_c = "c.period_key = :period_key AND " + (
            _scope("c.school_org_path") if scoped else "1 = 1"
        )
        mine_u = _scope("u.school_org_path") if scoped else "1 = 1"
    cand = f"{cand_from} WHERE {mine_c}"

    funded = await run(
        text(f"""
        UPDATE unfunded_entry AS u
        SET status = {FUNDED}, closed_at = :now, last_run_id = :run_id
        FROM {cand_from}
        WHERE u.period_key = :period_key AND u.status = {OPEN}
          AND c.student_key = u.student_key AND c.funded = 1
          AND {mine_c}
        """),
        params,
    )
    gone = await run(
        text(f"""
        UPDATE unfunded_entry AS u
        SET status = {NOT_ELIGIBLE}, closed_at = :now, last_run_id = :run_id
        WHERE u.period_key = :period_key AND u.status = {OPEN} AND {mine_u}
          AND NOT EXISTS (SELECT 1 FROM candidate c
                          WHERE c.period_key = :period_key AND c.student_key = u.student_key)
        """),
        params,
    )
    counts.closed = (funded.rowcount or 0) + (gone.rowcount or 0)
    reopened = await run(
        text(f"""
        UPDATE unfunded_entry AS u
        SET status = {OPEN}, reopened_at = :now, closed_at = NULL, last_run_id = :run_id,
            {_SET_FROM_CAND}
        FROM {cand_from}
        WHERE u.period_key = :period_key AND u.status <> {OPEN}
          AND c.student_key = u.student_key AND c.funded = 0
          AND {mine_c}
        """),
        params,
    )
    counts.reopened = reopened.rowcount or 0
    await run(
        text(f"""
        UPDATE unfunded_entry AS u
        SET {_SET_FROM_CAND}
        FROM {cand_from}
        WHERE u.period_key = :period_key AND u.status = {OPEN}
          AND c.student_key = u.student_key AND c.funded = 0
          AND {mine_c} AND {_CHANGED}
        """),
        params,
    )
    opened = await run(
        text(f"""
        INSERT INTO unfunded_entry (period_key, student_key, school_org_code, school_org_path,
            school_name, stage, grade, class_name, groups_mask, issued_mask, self_mask, status,
            first_found_at, last_run_id, reason_note, reason_by, reason_org_code,
            reason_carried_over)
        SELECT :period_key, c.student_key, c.school_org_code, c.school_org_path, c.school_name,
               c.stage, c.grade, c.class_name, c.groups_mask, c.issued_mask, c.self_mask,
               {OPEN}, :now, :run_id, '', '', '', {_false(name)}
        FROM {cand} AND c.funded = 0
        ON CONFLICT (period_key, student_key) DO NOTHING
        """),
        params,
    )
    counts.opened = opened.rowcount or 0
    if name == "postgresql" and not incremental:
        # Fresh statistics after a full pass, so incremental passes probe by student.
        await run(text("ANALYZE unfunded_entry"))

    if incremental:
        await run(text(_stats_delta()), params)
        await run(
            text("DELETE FROM population_stat WHERE period_key = :period_key AND students <= 0"),
            params,
        )
    else:
        scope_stat = f"AND {_scope('school_org_path')}" if scoped else ""
        await run(
            text(f"DELETE FROM population_stat WHERE period_key = :period_key {scope_stat}"),
            params,
        )
        await run(
            text(_stats_insert(f"AND {_scope('c.school_org_path')}" if scoped else "")), params
        )

    if name == "postgresql" and incremental:
        await run(text("SET LOCAL enable_hashjoin = on"))
        await run(text("SET LOCAL enable_mergejoin = on"))
    if carry_period_key == period_key:
        counts.carried_over = await carry_legacy_reasons(session, period_key=period_key)
    scope_u = f"AND {_scope('u.school_org_path')}" if scoped else ""
    scope_c = f"AND {_scope('c.school_org_path')}" if scoped else ""
    counts.open_after = int(
        (
            await run(
                text(
                    f"SELECT COUNT(*) FROM unfunded_entry u "
                    f"WHERE u.period_key = :period_key AND u.status = {OPEN} {scope_u}"
                ),
                params,
            )
        ).scalar_one()
    )
    if scoped:
        count_sql = (
            "SELECT COUNT(*), COALESCE(SUM(c.funded), 0) FROM candidate c "
            f"WHERE c.period_key = :period_key {scope_c}"
        )
    else:
        # The whole tree: every candidate is counted once in its school's all-groups (0) rows
        # of the statistics just brought up to date — no scan of the candidates.
        count_sql = (
            "SELECT COALESCE(SUM(students), 0), COALESCE(SUM(funded), 0) FROM population_stat "
            "WHERE period_key = :period_key AND special_group = 0"
        )
    row = (await run(text(count_sql), params)).one()
    counts.students_checked, counts.students_funded = int(row[0]), int(row[1])
    await run(text(f"DROP TABLE IF EXISTS {GROUP_TABLE}"))
    await run(text(f"DROP TABLE IF EXISTS {OLD}"))
    return counts


def _false(name: str) -> str:
    return "false" if name == "postgresql" else "0"


async def carry_legacy_reasons(session: AsyncSession, *, period_key: int) -> int:
    """Give entries of the period without a school reason the reason the retired 建档立卡 report
    holds for the same person and period (carried_over). Returns how many entries got one."""
    name = dialect(session)
    result = await session.execute(
        text(f"""
        UPDATE unfunded_entry AS u
        SET reason_code = lr.reason_code, reason_note = lr.note,
            reason_by = 'system:legacy', reason_org_code = lr.school_org_code,
            reason_at = COALESCE(lr.reported_at, lr.imported_at),
            reason_carried_over = {"true" if name == "postgresql" else "1"}
        FROM legacy_report lr JOIN student s ON s.id_number_blind_index = lr.id_number_blind_index
        WHERE u.period_key = :period_key AND lr.period_key = :period_key
          AND u.student_key = s.student_key AND u.reason_code IS NULL
          AND s.id_number_blind_index <> ''
        """),
        {"period_key": period_key},
    )
    return result.rowcount or 0


async def _ensure_group_table(session: AsyncSession, name: str) -> None:
    on_commit = " ON COMMIT DROP" if name == "postgresql" else ""
    await session.execute(text(f"DROP TABLE IF EXISTS {GROUP_TABLE}"))
    await session.execute(
        text(f"CREATE TEMP TABLE {GROUP_TABLE} (g INTEGER, bit INTEGER){on_commit}")
    )
    await session.execute(
        text(f"INSERT INTO {GROUP_TABLE} (g, bit) VALUES (:g, :bit)"),
        [{"g": g, "bit": 0 if g == 0 else 1 << (g - 1)} for g in range(14)],
    )
