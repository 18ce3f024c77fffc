"""The aid vocabulary as enums whose values equal the contract's (proto) numbers."""

from __future__ import annotations

from enum import IntEnum


class Level(IntEnum):
    """The five levels of use (五级应用); lower numbers are higher in the tree."""

    NATIONAL = 1  # 国家
    PROVINCE = 2  # 省
    CITY = 3  # 市
    COUNTY = 4  # 县
    SCHOOL = 5  # 校

    @classmethod
    def from_name(cls, name: str) -> Level:
        """The level of a caller context name (`national` … `school`)."""
        return cls[name.upper()]

    @property
    def label(self) -> str:
        """Chinese name of the level."""
        return _LEVEL_LABELS[self]


_LEVEL_LABELS = {
    Level.NATIONAL: "国家级",
    Level.PROVINCE: "省级",
    Level.CITY: "市级",
    Level.COUNTY: "县级",
    Level.SCHOOL: "学校",
}


class Stage(IntEnum):
    """Education stage (学段)."""

    PRESCHOOL = 1  # 学前教育
    COMPULSORY = 2  # 义务教育
    GENERAL_HIGH_SCHOOL = 3  # 普通高中
    SECONDARY_VOCATIONAL = 4  # 中等职业教育
    UNDERGRADUATE = 5  # 本专科
    POSTGRADUATE = 6  # 研究生

    @property
    def label(self) -> str:
        """Chinese name of the stage."""
        return _STAGE_LABELS[self]


_STAGE_LABELS = {
    Stage.PRESCHOOL: "学前教育",
    Stage.COMPULSORY: "义务教育",
    Stage.GENERAL_HIGH_SCHOOL: "普通高中",
    Stage.SECONDARY_VOCATIONAL: "中等职业教育",
    Stage.UNDERGRADUATE: "本专科",
    Stage.POSTGRADUATE: "研究生",
}


class Term(IntEnum):
    """Term of a school year: autumn opens it, spring closes it."""

    AUTUMN = 1  # 秋季学期
    SPRING = 2  # 春季学期

    @property
    def label(self) -> str:
        """Chinese name of the term."""
        return "秋季学期" if self is Term.AUTUMN else "春季学期"


class Category(IntEnum):
    """Category of an aid project (项目类别), set by its owner."""

    NEED_BASED = 1  # 助困
    MERIT = 2  # 奖优
    FEE_WAIVER = 3  # 免费
    LOAN = 4  # 贷款
    WORK_STUDY = 5  # 勤工
    OTHER = 6  # 其他


class OwnerType(IntEnum):
    """Who set a project up (项目来源)."""

    NATIONAL = 1  # 国家资助
    LOCAL_GOVERNMENT = 2  # 地方政府资助
    SCHOOL = 3  # 学校资助
    SOCIAL = 4  # 社会资助

    @property
    def label(self) -> str:
        """Chinese name of the source."""
        return _OWNER_LABELS[self]


_OWNER_LABELS = {
    OwnerType.NATIONAL: "国家资助",
    OwnerType.LOCAL_GOVERNMENT: "地方政府资助",
    OwnerType.SCHOOL: "学校资助",
    OwnerType.SOCIAL: "社会资助",
}


class ProjectStatus(IntEnum):
    """Whether records may be entered for a project."""

    ACTIVE = 1  # 启用
    DISABLED = 2  # 停用


class ExclusionScope(IntEnum):
    """Scope in which two projects exclude each other."""

    SCHOOL_YEAR = 1  # 同一学年
    TERM = 2  # 同一学期


class HardshipLevel(IntEnum):
    """Hardship recognition (困难认定档次); lower is more severe."""

    SPECIAL = 1  # 特别困难
    DIFFICULT = 2  # 困难
    GENERAL = 3  # 一般困难
    NOT_DIFFICULT = 4  # 不困难

    @property
    def label(self) -> str:
        """Chinese name of the level."""
        return _HARDSHIP_LABELS[self]


_HARDSHIP_LABELS = {
    HardshipLevel.SPECIAL: "特别困难",
    HardshipLevel.DIFFICULT: "困难",
    HardshipLevel.GENERAL: "一般困难",
    HardshipLevel.NOT_DIFFICULT: "不困难",
}


class PeriodStatus(IntEnum):
    """Whether an aid period takes entries and audits."""

    OPEN = 1  # 进行中
    CLOSED = 2  # 已关闭


class Phase(IntEnum):
    """A phase of work that has a time window (填报时间)."""

    ENTRY = 1  # 名单录入
    SCHOOL_AUDIT = 2  # 学校审核
    AUTHORITY_AUDIT = 3  # 主管部门审核

    @property
    def label(self) -> str:
        """Chinese name of the phase."""
        return _PHASE_LABELS[self]


_PHASE_LABELS = {
    Phase.ENTRY: "名单录入",
    Phase.SCHOOL_AUDIT: "学校审核",
    Phase.AUTHORITY_AUDIT: "主管部门审核",
}


class RecordStatus(IntEnum):
    """Life cycle of an aid record (资助名单)."""

    DRAFT = 1  # 待上报
    PENDING_SCHOOL_AUDIT = 2  # 待学校审核
    PENDING_AUTHORITY_AUDIT = 3  # 待主管部门审核
    RETURNED = 4  # 已退回
    APPROVED = 5  # 审核通过
    REVOKED = 6  # 已撤销
    DELETED = 7  # 已删除

    @property
    def label(self) -> str:
        """Chinese name of the status."""
        return _STATUS_LABELS[self]


_STATUS_LABELS = {
    RecordStatus.DRAFT: "待上报",
    RecordStatus.PENDING_SCHOOL_AUDIT: "待学校审核",
    RecordStatus.PENDING_AUTHORITY_AUDIT: "待主管部门审核",
    RecordStatus.RETURNED: "已退回",
    RecordStatus.APPROVED: "审核通过",
    RecordStatus.REVOKED: "已撤销",
    RecordStatus.DELETED: "已删除",
}

# Records that hold the student × project × period slot (and count against quotas).
LIVE_STATUSES = frozenset(
    {
        RecordStatus.DRAFT,
        RecordStatus.PENDING_SCHOOL_AUDIT,
        RecordStatus.PENDING_AUTHORITY_AUDIT,
        RecordStatus.RETURNED,
        RecordStatus.APPROVED,
    }
)
# Records the school may still change.
EDITABLE_STATUSES = frozenset({RecordStatus.DRAFT, RecordStatus.RETURNED})
PENDING_STATUSES = frozenset(
    {RecordStatus.PENDING_SCHOOL_AUDIT, RecordStatus.PENDING_AUTHORITY_AUDIT}
)


class Decision(IntEnum):
    """An auditor's decision."""

    APPROVE = 1  # 审核通过
    RETURN = 2  # 审核不通过 (退回)


class Action(IntEnum):
    """What happened to a record in one transition of its history."""

    ENTERED = 1  # 录入
    IMPORTED = 2  # 模板导入
    UPDATED = 3  # 修改
    SUBMITTED = 4  # 上报
    APPROVED = 5  # 审核通过
    RETURNED = 6  # 退回
    REVOKED = 7  # 撤销
    DELETED = 8  # 删除


class IdType(IntEnum):
    """Type of identity document (证件类型)."""

    RESIDENT_ID = 1  # 居民身份证
    HK_MACAO_RESIDENCE_PERMIT = 2  # 港澳居民居住证
    TAIWAN_RESIDENCE_PERMIT = 3  # 台湾居民居住证
    FOREIGNER_PERMANENT_RESIDENCE = 4  # 外国人永久居留身份证
    PASSPORT = 5  # 护照
    OTHER = 6  # 其他

    @property
    def label(self) -> str:
        """Chinese name of the document type."""
        return ID_TYPE_LABELS[self]


ID_TYPE_LABELS = {
    IdType.RESIDENT_ID: "居民身份证",
    IdType.HK_MACAO_RESIDENCE_PERMIT: "港澳居民居住证",
    IdType.TAIWAN_RESIDENCE_PERMIT: "台湾居民居住证",
    IdType.FOREIGNER_PERMANENT_RESIDENCE: "外国人永久居留身份证",
    IdType.PASSPORT: "护照",
    IdType.OTHER: "其他",
}


class EnrollmentOutcome(IntEnum):
    """Roster's answer to an enrolment check."""

    ENROLLED = 1  # 在校
    INVALID_ID_NUMBER = 2  # 身份证件号码无效
    STUDENT_NOT_FOUND = 3  # 学籍中无此学生
    NAME_MISMATCH = 4  # 姓名与学籍不一致
    NOT_AT_SCHOOL = 5  # 不在本校就读
    STAGE_MISMATCH = 6  # 学段不符
    NOT_IN_SCHOOL = 7  # 本周期不在校
