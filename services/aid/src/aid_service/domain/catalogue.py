"""The national aid projects (国家资助项目) with their 2024–2025 standards (DOMAIN.md §3), under
the menu names users know. Amounts are per record: per term for termly projects (half the annual
standard), per school year for annual ones (scholarships, loans)."""

from __future__ import annotations

from aid_service.domain.enums import Category, ExclusionScope, HardshipLevel, Stage
from aid_service.domain.projects import AmountTier, Exclusion

NATIONAL_ORG = "000000"


def _t(*amounts_yuan: float, names: tuple[str, ...] = ()) -> tuple[AmountTier, ...]:
    labels = names or tuple(f"{'一二三四五'[i]}档" for i in range(len(amounts_yuan)))
    return tuple(
        AmountTier(str(i + 1), labels[i], int(round(a * 100))) for i, a in enumerate(amounts_yuan)
    )


# (code, name, stage, category, tiers, options)
NATIONAL_PROJECTS: list[dict] = [
    dict(project_code="GJ-XQ-ZFZZ", name="学前教育政府资助", stage=Stage.PRESCHOOL,
         category=Category.NEED_BASED, tiers=_t(600), allow_custom_amount=True,
         min_amount_fen=10_000, max_amount_fen=300_000, requires_recognition=True,
         policy_basis="地方先行、中央奖补；标准由地方确定（示例：年均1200元）"),
    dict(project_code="GJ-XQ-MBJF", name="学前教育免保育教育费", stage=Stage.PRESCHOOL,
         category=Category.FEE_WAIVER, allow_custom_amount=True, min_amount_fen=10_000,
         max_amount_fen=1_000_000, start_school_year="2025-2026",
         policy_basis="国办发〔2025〕27号：公办园免除核定的保育教育费，民办园相应减免"),
    dict(project_code="GJ-YW-JSSBZ-XX", name="寄宿生生活补助（小学）", stage=Stage.COMPULSORY,
         category=Category.NEED_BASED, tiers=_t(625), requires_recognition=True,
         exclusions=(Exclusion("GJ-YW-FJSSBZ-XX", ExclusionScope.TERM),),
         policy_basis="2024年春季学期起小学每生每年1250元"),
    dict(project_code="GJ-YW-JSSBZ-CZ", name="寄宿生生活补助（初中）", stage=Stage.COMPULSORY,
         category=Category.NEED_BASED, tiers=_t(750), requires_recognition=True,
         exclusions=(Exclusion("GJ-YW-FJSSBZ-CZ", ExclusionScope.TERM),),
         policy_basis="2024年春季学期起初中每生每年1500元"),
    dict(project_code="GJ-YW-FJSSBZ-XX", name="非寄宿生生活补助（小学）", stage=Stage.COMPULSORY,
         category=Category.NEED_BASED, tiers=_t(312.5), requires_recognition=True,
         policy_basis="按寄宿生标准的50%：小学每生每年625元"),
    dict(project_code="GJ-YW-FJSSBZ-CZ", name="非寄宿生生活补助（初中）", stage=Stage.COMPULSORY,
         category=Category.NEED_BASED, tiers=_t(375), requires_recognition=True,
         policy_basis="按寄宿生标准的50%：初中每生每年750元"),
    dict(project_code="GJ-PG-ZXJ", name="普通高中国家助学金", stage=Stage.GENERAL_HIGH_SCHOOL,
         category=Category.NEED_BASED, tiers=_t(1750, 1150, 750), requires_recognition=True,
         policy_basis="2025年春季学期起平均每生每年2300元，最高3500元"),
    dict(project_code="GJ-PG-MXZF", name="普通高中免学杂费", stage=Stage.GENERAL_HIGH_SCHOOL,
         category=Category.NEED_BASED, allow_custom_amount=True, min_amount_fen=10_000,
         max_amount_fen=500_000, requires_recognition=True,
         policy_basis="脱贫家庭、残疾家庭经济困难、农村低保、农村特困供养学生免除学杂费"),
    dict(project_code="GJ-ZZ-ZXJ", name="中职国家助学金", stage=Stage.SECONDARY_VOCATIONAL,
         category=Category.NEED_BASED, tiers=_t(1750, 1150, 750), requires_recognition=True,
         policy_basis="2025年春季学期起平均每生每年2300元"),
    dict(project_code="GJ-ZZ-MXF", name="中职国家免学费", stage=Stage.SECONDARY_VOCATIONAL,
         category=Category.FEE_WAIVER, allow_custom_amount=True, min_amount_fen=10_000,
         max_amount_fen=1_000_000, policy_basis="按核定的公办学校学费标准免除"),
    dict(project_code="GJ-ZZ-GJJXJ", name="中职国家奖学金", stage=Stage.SECONDARY_VOCATIONAL,
         category=Category.MERIT, tiers=_t(6000), annual=True, policy_basis="每生每年6000元"),
    dict(project_code="GJ-BZK-GJJXJ", name="本专科生国家奖学金", stage=Stage.UNDERGRADUATE,
         category=Category.MERIT, tiers=_t(10000), annual=True,
         exclusions=(Exclusion("GJ-BZK-LZJXJ", ExclusionScope.SCHOOL_YEAR),),
         policy_basis="2024年起每生每年10000元，每年12万名；同一学年不能同时获得国家励志奖学金"),
    dict(project_code="GJ-BZK-LZJXJ", name="本专科生国家励志奖学金", stage=Stage.UNDERGRADUATE,
         category=Category.MERIT, tiers=_t(6000), annual=True, requires_recognition=True,
         policy_basis="2024年起每生每年6000元，资助品学兼优的家庭经济困难学生"),
    dict(project_code="GJ-BZK-ZXJ", name="本专科生国家助学金", stage=Stage.UNDERGRADUATE,
         category=Category.NEED_BASED, tiers=_t(2500, 1850, 1250), requires_recognition=True,
         policy_basis="2024年秋季学期起平均每生每年3700元，最高5000元"),
    dict(project_code="GJ-BZK-ZXDK", name="国家助学贷款（本专科生）", stage=Stage.UNDERGRADUATE,
         category=Category.LOAN, allow_custom_amount=True, min_amount_fen=100_000,
         max_amount_fen=2_000_000, annual=True, policy_basis="2024年起每生每年不超过20000元"),
    dict(project_code="GJ-YJS-GJJXJ", name="研究生国家奖学金", stage=Stage.POSTGRADUATE,
         category=Category.MERIT, tiers=_t(20000, 30000, names=("硕士", "博士")), annual=True,
         policy_basis="硕士每生每年20000元，博士每生每年30000元"),
    dict(project_code="GJ-YJS-ZXJ", name="研究生国家助学金", stage=Stage.POSTGRADUATE,
         category=Category.OTHER, tiers=_t(3000, 7500, names=("硕士", "博士")),
         policy_basis="中央高校硕士每生每年6000元、博士每生每年15000元"),
    dict(project_code="GJ-YJS-ZXDK", name="国家助学贷款（研究生）", stage=Stage.POSTGRADUATE,
         category=Category.LOAN, allow_custom_amount=True, min_amount_fen=100_000,
         max_amount_fen=2_500_000, annual=True, policy_basis="2024年起每生每年不超过25000元"),
]  # fmt: skip

# Recognition strictness of the need-based projects that require it (default 一般困难 and above).
DEFAULT_MIN_HARDSHIP = HardshipLevel.GENERAL
