"""Demo data of the embedded default (`make run`): students at identity's demo schools, a national
低保 list issued and matched, one school's verification and self-collected member, 广东省's default
levels and a few recognitions.

Written through the service layer with a system caller, on the running service's database and
outbox (the running service's relay publishes the events). Idempotent: students re-sync
unchanged, and the batch, memberships, defaults and recognitions are only added when missing.
The org read copy comes from identity's events, so seeding waits until the demo schools arrived.
"""

from __future__ import annotations

import asyncio
import logging

from zizhu_common.errors import AlreadyExists
from zizhu_common.idnumber import id_check_char
from zizhu_common.rpc import CallerContext

from roster_service.domain.common import HardshipLevel, SpecialGroup, Term
from roster_service.domain.groups import IssuedRowInput, IssueMode, Verification
from roster_service.service import RosterServices

log = logging.getLogger(__name__)

SYSTEM = CallerContext(
    account_id="system:demo",
    org_code="",
    org_path="/",
    level="national",
    roles=frozenset({"system", "operator", "admin"}),
)
NATIONAL = "000000"
PROVINCE = "440000"
BATCH_TITLE = "演示：民政部低保学生名单（全量）"

# (school code, stage name, grade, count, first birth year, area code)
SCHOOLS = [
    ("2144010601", "义务教育", "五年级", 12, 2015, "440106"),  # 广州市天河区华阳小学
    ("3444010601", "普通高中", "高二", 6, 2009, "440106"),  # 广州市天河中学
    ("1144011101", "学前教育", "中班", 5, 2022, "440111"),  # 广州市白云区实验幼儿园
    ("3644010001", "中职", "一年级", 4, 2010, "440104"),  # 广州市轻工职业学校
    ("4144010558", "本专科", "2024级", 4, 2006, "440303"),  # 中山大学
]
SURNAMES = "李王张刘陈杨黄赵吴周"
GIVEN = [
    "子涵",
    "欣怡",
    "浩然",
    "梓轩",
    "雨桐",
    "宇航",
    "思琪",
    "俊杰",
    "诗涵",
    "博文",
    "佳怡",
    "一鸣",
]


def demo_students() -> list[dict[str, str]]:
    """The demo 学籍 rows (deterministic ID numbers)."""
    rows = []
    n = 0
    for school, stage, grade, count, year, area in SCHOOLS:
        for i in range(count):
            n += 1
            male = i % 2 == 0
            seq = (n * 2 + (1 if male else 0)) % 1000
            first17 = f"{area}{year}0{(i % 9) + 1}{10 + i:02d}{seq:03d}"
            idn = first17 + id_check_char(first17)
            k12 = stage != "本专科"
            rows.append(
                {
                    "id_number": idn,
                    "name": SURNAMES[n % len(SURNAMES)] + GIVEN[i % len(GIVEN)],
                    "school_org_code": school,
                    "stage": stage,
                    "student_number": ("G" + idn) if k12 else f"2024{n:06d}",
                    "grade": grade,
                    "class_name": f"{i % 2 + 1}班",
                    "status": "在籍",
                    "boarder": "是" if i % 3 == 0 else "否",
                    "phone": f"139{n:08d}",
                    "enrolled_on": f"{2024 if stage in ('本专科', '中职') else 2023}-09-01",
                    "household_type": "农村" if i % 2 else "城镇",
                }
            )
    return rows


async def _wait_for_orgs(services: RosterServices, codes: list[str], timeout_s: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        async with services.deps.db.read() as session:
            found = await services.deps.orgs.by_codes(session, codes)
        if len(found) == len(codes):
            return
        if loop.time() > deadline:
            missing = sorted(set(codes) - set(found))
            raise RuntimeError(f"roster has not received identity's demo orgs yet: {missing}")
        await asyncio.sleep(0.5)


async def seed_demo(services: RosterServices, *, wait_s: float = 120.0) -> list[dict[str, str]]:
    """Create the roster's demo data (idempotent); returns no logins (roster has no accounts)."""
    d = services.deps
    await _wait_for_orgs(services, [NATIONAL, PROVINCE] + [s[0] for s in SCHOOLS], wait_s)
    rows = demo_students()
    result = await services.students.sync_rows(
        SYSTEM, source_system="学籍系统", batch_id="", rows=rows, skip_invalid=False
    )
    if result.errors:
        raise RuntimeError(f"demo students refused: {result.errors[:3]}")
    ids = result.student_ids
    year = d.current_school_year()

    await services.recognitions.set_defaults(
        SYSTEM,
        org_code=PROVINCE,
        defaults=[
            (SpecialGroup.POVERTY_ALLEVIATED, HardshipLevel.SPECIAL),
            (SpecialGroup.DIBAO, HardshipLevel.DIFFICULT),
            (SpecialGroup.EXTREME_POVERTY_SUPPORT, HardshipLevel.SPECIAL),
            (SpecialGroup.ORPHAN, HardshipLevel.SPECIAL),
            (SpecialGroup.DISABLED, HardshipLevel.DIFFICULT),
            (SpecialGroup.DIBAO_EDGE, HardshipLevel.GENERAL),
        ],
    )

    batches, _ = await services.groups.list_batches(
        SYSTEM, org_code=NATIONAL, statuses=[], group=SpecialGroup.DIBAO, page=None
    )
    if not any(b.title == BATCH_TITLE for b in batches):
        batch = await services.groups.issue(
            SYSTEM,
            issuing_org_code=NATIONAL,
            title=BATCH_TITLE,
            source_system="民政部",
            groups=[SpecialGroup.DIBAO],
            mode=IssueMode.FULL,
            as_of_date="",
            school_year=year,
        )
        listed = [rows[i] for i in (0, 2, 4, 12, 13, 18, 22)]
        unknown = "11010519491231002X"
        issued = [
            IssuedRowInput(1, r["id_number"], r["name"], SpecialGroup.DIBAO, 1, "440106", "", "")
            for r in listed
        ] + [IssuedRowInput(1, unknown, "外省学生", SpecialGroup.DIBAO, 1, "110105", "", "")]
        await services.groups.add_rows(SYSTEM, batch_id=batch.batch_id, chunk_number=1, rows=issued)
        await services.groups.commit(SYSTEM, batch_id=batch.batch_id, chunk_count=1)
        await services.groups.drain()
        members, _ = await services.groups.list_memberships(
            SYSTEM, org_code="2144010601", student_id="", groups=[SpecialGroup.DIBAO], source=0,
            statuses=[], verification_statuses=[], batch_id=batch.batch_id, school_year=year,
            period_year="", period_term=0, page=None,
        )  # fmt: skip
        if members:
            await services.groups.verify(
                SYSTEM,
                membership_ids=[members[0].membership_id],
                result=Verification.CONFIRMED,
                note="已入户核实",
            )
    try:
        await services.groups.add_self_collected(
            SYSTEM,
            student_id=ids[5],
            id_type=0,
            id_number="",
            group=SpecialGroup.ORPHAN,
            valid_from="",
            valid_to="",
            evidence_note="民政部门出具的孤儿证明（演示）",
            school_year=year,
            students=services.students,
        )
    except AlreadyExists:
        pass
    for index, level in (
        (0, HardshipLevel.DIFFICULT),
        (1, HardshipLevel.GENERAL),
        (5, HardshipLevel.SPECIAL),
    ):
        await services.recognitions.recognize(
            SYSTEM,
            student_id=ids[index],
            school_year=year,
            term=Term.AUTUMN,
            level=level,
            basis_groups=[SpecialGroup.ORPHAN] if index == 5 else [],
            basis_note="学校认定评议小组评议（演示）",
            recognized_on="",
            change_reason="",
            expected_version=0,
        )
    log.info("roster demo data ready: %d students", len(ids))
    return []
