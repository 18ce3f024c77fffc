"""The one-active-membership rule is the database's (migration roster_0007): at most one active
membership per student, group and school year, while ended ones accumulate as history."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from roster_service import tables
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError


def _membership(group: int, status: int, year: str = "2026-2027") -> dict[str, object]:
    now = datetime.now(UTC)
    return {
        "student_id": "S1",
        "school_year": year,
        "special_group": group,
        "source": 2,
        "school_org_code": "4101010001",
        "school_org_path": "/000000/410000/410100/410101/4101010001/",
        "stage": 1,
        "status": status,
        "verification_status": 1,
        "created_by": "test",
        "created_at": now,
        "updated_at": now,
    }


async def test_a_second_active_membership_is_refused_but_ended_ones_are_history(roster):
    M = tables.membership
    async with roster.db.write() as session:
        await session.execute(insert(M).values(**_membership(1, status=1)))
        await session.execute(insert(M).values(**_membership(1, status=2)))
        await session.execute(insert(M).values(**_membership(1, status=2)))
        await session.execute(insert(M).values(**_membership(2, status=1)))
        await session.execute(insert(M).values(**_membership(1, status=1, year="2025-2026")))

    with pytest.raises(IntegrityError):
        async with roster.db.write() as session:
            await session.execute(insert(M).values(**_membership(1, status=1)))
    assert await roster.count("membership") == 5

    # Ending the active one frees its place for a new active membership.
    async with roster.db.write() as session:
        await session.execute(
            update(M)
            .where(M.c.student_id == "S1", M.c.special_group == 1, M.c.status == 1)
            .where(M.c.school_year == "2026-2027")
            .values(status=2)
        )
        await session.execute(insert(M).values(**_membership(1, status=1)))
    async with roster.db.read() as session:
        rows = (
            await session.execute(
                select(M.c.special_group, M.c.school_year, M.c.status)
                .where(M.c.student_id == "S1")
                .order_by(M.c.school_year, M.c.special_group, M.c.status)
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        (1, "2025-2026", 1),
        (1, "2026-2027", 1),
        (1, "2026-2027", 2),
        (1, "2026-2027", 2),
        (1, "2026-2027", 2),
        (2, "2026-2027", 1),
    ]
