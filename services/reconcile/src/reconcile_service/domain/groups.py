"""The 13 special groups of V3.3.2 (十三类特殊群体) and the bit masks entries keep them in."""

from __future__ import annotations

from collections.abc import Iterable

ISSUED, SELF_COLLECTED = 1, 2  # MembershipSource: 中央下发, 自采集

# Enum value → Chinese name, in the order of the upgrade note (common.v1.SpecialGroup).
GROUP_NAMES: dict[int, str] = {
    1: "脱贫家庭学生",
    2: "脱贫不稳定家庭学生",
    3: "边缘易致贫家庭学生",
    4: "突发严重困难家庭学生",
    5: "低保学生",
    6: "特困救助学生",
    7: "孤儿学生",
    8: "残疾学生",
    9: "残疾人子女",
    10: "事实无人抚养儿童",
    11: "低保边缘学生",
    12: "支出型困难家庭学生",
    13: "其他低收入家庭学生",
}
GROUPS: tuple[int, ...] = tuple(GROUP_NAMES)
# 脱贫家庭学生 (原建档立卡): the only group of the retired report.
POVERTY_ALLEVIATED = 1


def bit(group: int) -> int:
    """The mask bit of a group (1 → 1, 2 → 2, 3 → 4, …)."""
    return 1 << (group - 1)


def mask_of(groups: Iterable[int]) -> int:
    """The mask holding every group given."""
    mask = 0
    for g in groups:
        mask |= bit(g)
    return mask


def groups_in(mask: int) -> list[int]:
    """The groups of a mask, in enum order."""
    return [g for g in GROUPS if mask & bit(g)]


def is_group(value: int) -> bool:
    """True for one of the 13 groups."""
    return value in GROUP_NAMES
