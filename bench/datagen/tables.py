"""Static reference tables for the generator (DOMAIN.md §2.3, §3, §5, §6)."""

from __future__ import annotations

from typing import NamedTuple

# GB/T 2260 provincial codes of the 31 mainland provinces (DOMAIN.md §5.4).
PROVINCES: dict[str, str] = {
    "11": "北京市",
    "12": "天津市",
    "13": "河北省",
    "14": "山西省",
    "15": "内蒙古自治区",
    "21": "辽宁省",
    "22": "吉林省",
    "23": "黑龙江省",
    "31": "上海市",
    "32": "江苏省",
    "33": "浙江省",
    "34": "安徽省",
    "35": "福建省",
    "36": "江西省",
    "37": "山东省",
    "41": "河南省",
    "42": "湖北省",
    "43": "湖南省",
    "44": "广东省",
    "45": "广西壮族自治区",
    "46": "海南省",
    "50": "重庆市",
    "51": "四川省",
    "52": "贵州省",
    "53": "云南省",
    "54": "西藏自治区",
    "61": "陕西省",
    "62": "甘肃省",
    "63": "青海省",
    "64": "宁夏回族自治区",
    "65": "新疆维吾尔自治区",
}

PROVINCE_SHORT: dict[str, str] = {
    "11": "北京",
    "12": "天津",
    "13": "河北",
    "14": "山西",
    "15": "内蒙古",
    "21": "辽宁",
    "22": "吉林",
    "23": "黑龙江",
    "31": "上海",
    "32": "江苏",
    "33": "浙江",
    "34": "安徽",
    "35": "福建",
    "36": "江西",
    "37": "山东",
    "41": "河南",
    "42": "湖北",
    "43": "湖南",
    "44": "广东",
    "45": "广西",
    "46": "海南",
    "50": "重庆",
    "51": "四川",
    "52": "贵州",
    "53": "云南",
    "54": "西藏",
    "61": "陕西",
    "62": "甘肃",
    "63": "青海",
    "64": "宁夏",
    "65": "新疆",
}

MUNICIPALITIES = frozenset({"11", "12", "31", "50"})

# Approximate number of county-level units per province: the weights used to spread a requested
# number of counties over the chosen provinces (national total ~2,850, DOMAIN.md §6).
COUNTY_WEIGHTS: dict[str, int] = {
    "11": 16,
    "12": 16,
    "13": 167,
    "14": 117,
    "15": 103,
    "21": 100,
    "22": 60,
    "23": 121,
    "31": 16,
    "32": 95,
    "33": 90,
    "34": 104,
    "35": 84,
    "36": 100,
    "37": 136,
    "41": 157,
    "42": 103,
    "43": 122,
    "44": 122,
    "45": 111,
    "46": 25,
    "50": 38,
    "51": 183,
    "52": 88,
    "53": 129,
    "54": 74,
    "61": 107,
    "62": 86,
    "63": 44,
    "64": 22,
    "65": 107,
}

# Characters used to make plausible place names ("<two chars>市/区/县").
PLACE_CHARS = (
    "安平阳山江河新城东西南北宁丰昌德兴华泉源清宜永广龙凤梅桂临长海湖川峰林石青云金武通庆顺"
    "泰和康乐福宝明盛嘉定远阜沙溪柳松桥岭浦汉涟沅湘滨鹤鸣望岳崇仁义信成吉祥丹霞瑞鹿玉秀翠"
)

STAGES = ("学前", "义务教育", "普高", "中职", "本专科", "研究生")

# Nominal age on 1 September of the school year at grade 1 of each stage.
STAGE_BASE_AGE: dict[str, int] = {
    "学前": 3,
    "义务教育": 6,
    "普高": 15,
    "中职": 15,
    "本专科": 18,
    "研究生": 22,
}

# Share (per mille) of students 0, 1, 2, ... years older than the nominal cohort.
STAGE_AGE_SPREAD: dict[str, tuple[int, ...]] = {
    "学前": (970, 30),
    "义务教育": (930, 60, 10),
    "普高": (880, 90, 30),
    "中职": (800, 130, 50, 20),
    "本专科": (800, 140, 40, 20),
    "研究生": (450, 200, 120, 80, 60, 40, 25, 15, 10),
}

STAGE_CLASS_SIZE: dict[str, int] = {
    "学前": 30,
    "义务教育": 45,
    "普高": 50,
    "中职": 45,
    "本专科": 40,
    "研究生": 30,
}

# Boarding share (per 1024) by stage; 义务教育 is split into primary (grades 1-6) and junior.
BOARDING_PER_1024: dict[str, int] = {
    "学前": 20,
    "小学": 150,
    "初中": 460,
    "普高": 620,
    "中职": 720,
    "本专科": 980,
    "研究生": 820,
}

# 学校标识码 categories (DOMAIN.md §5.3).
SCHOOL_CATEGORIES: dict[str, str] = {
    "11": "幼儿园",
    "21": "小学",
    "22": "成人小学",
    "31": "普通初中",
    "32": "职业初中",
    "33": "成人初中",
    "34": "普通高中",
    "35": "成人高中",
    "36": "中职",
    "37": "工读",
    "41": "普通高校",
    "42": "成人高校",
    "51": "特殊教育",
    "91": "培养研究生的科研机构",
    "92": "民办其他高教",
    "93": "中职培训机构",
}


class CategoryMix(NamedTuple):
    """How often a generated school has a category, and its typical size (DOMAIN.md §6)."""

    category: str
    per_100k: int
    students: int


# Shares of the ~476k schools of 2024 and their mean enrolment.
CATEGORY_MIX: tuple[CategoryMix, ...] = (
    CategoryMix("11", 53_200, 140),
    CategoryMix("21", 30_000, 750),
    CategoryMix("31", 10_900, 1_000),
    CategoryMix("34", 3_320, 1_850),
    CategoryMix("36", 1_490, 1_800),
    CategoryMix("41", 650, 15_000),
    CategoryMix("51", 390, 400),
    CategoryMix("91", 50, 500),
)

# The 13 special groups (DOMAIN.md §2.3): code, name, relative weight among members, issued by.
SPECIAL_GROUPS: tuple[tuple[str, str, int], ...] = (
    ("01", "脱贫家庭学生", 350),
    ("02", "脱贫不稳定家庭学生", 40),
    ("03", "边缘易致贫家庭学生", 40),
    ("04", "突发严重困难家庭学生", 20),
    ("05", "低保学生", 200),
    ("06", "特困救助学生", 20),
    ("07", "孤儿学生", 15),
    ("08", "残疾学生", 30),
    ("09", "残疾人子女", 60),
    ("10", "事实无人抚养儿童", 15),
    ("11", "低保边缘学生", 60),
    ("12", "支出型(刚性支出)困难家庭学生", 30),
    ("13", "其他低收入家庭学生", 100),
)


class AidProject(NamedTuple):
    """A national aid programme with its latest standard (DOMAIN.md §3); money in fen."""

    code: str
    name: str
    stage: str
    category: str  # 助困 / 奖优 / 免 / 贷 / 勤 / 普惠
    annual_fen: int  # the (average) annual standard
    tiers_fen: tuple[int, ...]  # annual amounts that may be awarded
    per_term: bool  # paid half in autumn and half in spring; else once, in autumn


_LOAN_BZ = tuple(range(800_000, 2_000_001, 100_000))
_LOAN_YJ = tuple(range(1_000_000, 2_500_001, 100_000))

# fmt: off
AID_PROJECTS: tuple[AidProject, ...] = (
    AidProject("XQ01", "学前教育政府资助", "学前", "助困", 120_000, (120_000,), True),
    AidProject("YW01", "义务教育寄宿生生活补助(小学)", "义务教育", "助困", 125_000, (125_000,), True),
    AidProject("YW02", "义务教育寄宿生生活补助(初中)", "义务教育", "助困", 150_000, (150_000,), True),
    AidProject("YW03", "义务教育非寄宿生生活补助(小学)", "义务教育", "助困", 62_500, (62_500,), True),
    AidProject("YW04", "义务教育非寄宿生生活补助(初中)", "义务教育", "助困", 75_000, (75_000,), True),
    AidProject("PG01", "普通高中国家助学金", "普高", "助困", 230_000, (350_000, 230_000, 150_000), True),
    AidProject("PG02", "普通高中免学杂费", "普高", "助困", 100_000, (80_000, 100_000, 120_000), True),
    AidProject("ZZ01", "中等职业教育国家助学金", "中职", "助困", 230_000, (350_000, 230_000, 150_000), True),
    AidProject("ZZ02", "中等职业教育免学费", "中职", "免", 200_000, (150_000, 200_000, 300_000), True),
    AidProject("ZZ03", "中等职业教育国家奖学金", "中职", "奖优", 600_000, (600_000,), False),
    AidProject("BZ01", "本专科生国家助学金", "本专科", "助困", 370_000, (500_000, 370_000, 250_000), True),
    AidProject("BZ02", "本专科生国家励志奖学金", "本专科", "奖优", 600_000, (600_000,), False),
    AidProject("BZ03", "本专科生国家奖学金", "本专科", "奖优", 1_000_000, (1_000_000,), False),
    AidProject("BZ04", "国家助学贷款(本专科生)", "本专科", "贷", 2_000_000, _LOAN_BZ, False),
    AidProject("YJ01", "研究生国家助学金", "研究生", "普惠", 600_000, (600_000, 1_500_000), True),
    AidProject("YJ02", "研究生国家奖学金", "研究生", "奖优", 2_000_000, (2_000_000, 3_000_000), False),
    AidProject("YJ03", "国家助学贷款(研究生)", "研究生", "贷", 2_500_000, _LOAN_YJ, False),
)
# fmt: on

AID_PROJECT_BY_CODE: dict[str, AidProject] = {p.code: p for p in AID_PROJECTS}

# Common surnames with approximate shares (per 10,000 people).
# fmt: off
SURNAMES: tuple[tuple[str, int], ...] = (
    ("王", 710), ("李", 700), ("张", 670), ("刘", 540), ("陈", 460), ("杨", 310), ("黄", 220),
    ("赵", 200), ("吴", 190), ("周", 180), ("徐", 140), ("孙", 140), ("马", 130), ("朱", 120),
    ("胡", 110), ("郭", 110), ("何", 100), ("林", 97), ("高", 96), ("罗", 86), ("郑", 80),
    ("梁", 72), ("谢", 63), ("宋", 61), ("唐", 60), ("许", 59), ("韩", 57), ("冯", 56),
    ("邓", 55), ("曹", 53), ("彭", 51), ("曾", 50), ("肖", 49), ("田", 47), ("董", 46),
    ("袁", 44), ("潘", 42), ("于", 41), ("蒋", 40), ("蔡", 39), ("余", 38), ("杜", 37),
    ("叶", 36), ("程", 35), ("苏", 34), ("魏", 33), ("吕", 32), ("丁", 31), ("任", 30),
    ("沈", 29), ("姚", 28), ("卢", 27), ("姜", 26), ("崔", 25), ("钟", 24), ("谭", 23),
    ("陆", 22), ("汪", 21), ("范", 20), ("金", 20), ("石", 19), ("廖", 19), ("贾", 18),
    ("夏", 18), ("韦", 17), ("付", 17), ("方", 16), ("白", 16), ("邹", 15), ("孟", 15),
    ("熊", 14), ("秦", 14), ("邱", 13), ("江", 13), ("尹", 12), ("薛", 12), ("闫", 11),
    ("段", 11), ("雷", 10), ("侯", 10), ("龙", 10), ("史", 10), ("陶", 9), ("黎", 9),
    ("贺", 9), ("顾", 9), ("毛", 8), ("郝", 8), ("龚", 8), ("邵", 8), ("万", 7), ("钱", 7),
    ("严", 7), ("覃", 7), ("武", 7), ("戴", 7), ("莫", 6), ("孔", 6), ("向", 6), ("汤", 6),
    ("欧阳", 5), ("上官", 1), ("司马", 1), ("诸葛", 1),
)
# fmt: on

GIVEN_MALE = "伟强磊军洋勇杰涛斌超明刚平辉鹏华飞鑫波宇浩凯健俊帆帅旭龙林阳彬博豪轩睿泽铭鸿志国建峰天昊翔然瑞航晨诚康毅"
GIVEN_FEMALE = (
    "芳娜敏静丽艳娟霞秀玲桂英燕萍红琳雪梅慧婷倩颖欣怡佳琪雨涵诗思梦晓月璐瑶悦妍萱彤可馨蕾菲雯丹"
)
GIVEN_NEUTRAL = "文子一安乐心语星诺嘉宁云清书逸若依沐言"

# Three-digit mobile prefixes (1[3-9]x) with rough weights.
PHONE_PREFIXES: tuple[tuple[str, int], ...] = tuple(
    [(f"13{d}", 4) for d in range(10)]
    + [(f"15{d}", 3) for d in (0, 1, 2, 3, 5, 6, 7, 8, 9)]
    + [(f"18{d}", 3) for d in range(10)]
    + [(f"17{d}", 1) for d in (3, 5, 6, 7, 8)]
    + [(f"19{d}", 1) for d in (1, 3, 5, 8, 9)]
    + [("145", 1), ("147", 1), ("166", 1)]
)
