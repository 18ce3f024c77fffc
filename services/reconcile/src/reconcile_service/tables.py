"""SQLAlchemy tables of the reconcile service (its own database).

Two kinds of tables:
- the **read copy**, fed only by other services' events and rebuildable by replaying their
  streams: org, student, enrollment, membership, project (+ tiers, exclusions), period,
  aid_record, funded_student, recognition, allocation;
- reconcile's **own records**: comparison_run, unfunded_entry and the reasons on it,
  authority_statement, population_stat, reason_code, legacy_report, finding, quota.

Students, periods and entries carry integer surrogate keys so that the comparison joins
integers, not strings. Dates are "YYYY-MM-DD" text (Asia/Shanghai); instants are UTC.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from zizhu_common.consumer import processed_event_table
from zizhu_common.db import BigIntPK
from zizhu_common.outbox import outbox_table

metadata = MetaData()

outbox_event = outbox_table(metadata)
processed_event = processed_event_table(metadata)

PATH = 400  # materialised org path
CODE = 32  # org codes, reason codes
ID = 64  # ids from other services

_PATTERN = {"postgresql_ops": {"org_path": "varchar_pattern_ops"}}


def _ts(name: str, nullable: bool = True) -> Column:
    return Column(name, DateTime(timezone=True), nullable=nullable)


# --- read copy --------------------------------------------------------------------------------

org = Table(
    "org",
    metadata,
    Column("org_code", String(CODE), primary_key=True),
    Column("name", String(200), nullable=False, server_default=""),
    Column("level", SmallInteger, nullable=False, server_default="0"),
    Column("parent_code", String(CODE), nullable=False, server_default=""),
    Column("org_path", String(PATH), nullable=False),
    # Stages a school serves, as ",2,3," (empty for authorities).
    Column("stages", String(40), nullable=False, server_default=""),
    Column("status", SmallInteger, nullable=False, server_default="1"),
    _ts("event_at"),
    Index("ix_org_path", "org_path", **_PATTERN),
)

student = Table(
    "student",
    metadata,
    Column("student_key", BigIntPK, primary_key=True, autoincrement=True),
    Column("student_id", String(ID), nullable=False, unique=True),
    Column("id_number_blind_index", String(ID), nullable=False, server_default=""),
    Column("name", String(100), nullable=False, server_default=""),
    Column("id_number_masked", String(32), nullable=False, server_default=""),
    Column("gender", SmallInteger, nullable=False, server_default="0"),
    Column("birth_date", String(10), nullable=False, server_default=""),
    # False while only other services' events named the student (no roster event yet).
    Column("registered", Boolean, nullable=False, server_default="0"),
    _ts("event_at"),
    Index("ix_student_blind_index", "id_number_blind_index"),
)

enrollment = Table(
    "enrollment",
    metadata,
    Column("student_key", BigInteger, primary_key=True),
    Column("school_org_code", String(CODE), primary_key=True),
    Column("stage", SmallInteger, primary_key=True),
    Column("school_org_path", String(PATH), nullable=False),
    Column("school_name", String(200), nullable=False, server_default=""),
    Column("grade", String(40), nullable=False, server_default=""),
    Column("class_name", String(60), nullable=False, server_default=""),
    Column("status", SmallInteger, nullable=False, server_default="1"),
    Column("enrolled_on", String(10), nullable=False, server_default=""),
    Column("left_on", String(10), nullable=False, server_default=""),
    Column("boarder", Boolean, nullable=False, server_default="0"),
    _ts("event_at"),
)

membership = Table(
    "membership",
    metadata,
    Column("membership_id", String(ID), primary_key=True),
    Column("student_key", BigInteger, nullable=False),
    # NULL until roster.membership.added or .issued is seen (a verify/end may arrive first on
    # redelivery).
    Column("school_org_code", String(CODE)),
    Column("school_org_path", String(PATH)),
    Column("stage", SmallInteger, nullable=False, server_default="0"),
    Column("special_group", SmallInteger, nullable=False),
    Column("source", SmallInteger, nullable=False, server_default="0"),
    Column("batch_id", String(ID), nullable=False, server_default=""),
    Column("valid_from", String(10), nullable=False, server_default=""),
    Column("valid_to", String(10), nullable=False, server_default=""),
    Column("verification", SmallInteger, nullable=False, server_default="0"),
    Column("ended_on", String(10)),
    _ts("added_at"),
    _ts("verified_at"),
    Index("ix_membership_student", "student_key"),
)

project = Table(
    "project",
    metadata,
    Column("project_code", String(ID), primary_key=True),
    Column("name", String(200), nullable=False, server_default=""),
    Column("category", SmallInteger, nullable=False, server_default="0"),
    Column("stage", SmallInteger, nullable=False, server_default="0"),
    Column("owner_org_path", String(PATH), nullable=False, server_default=""),
    Column("allow_custom_amount", Boolean, nullable=False, server_default="0"),
    Column("min_amount_fen", BigInteger, nullable=False, server_default="0"),
    Column("max_amount_fen", BigInteger, nullable=False, server_default="0"),
    Column("requires_recognition", Boolean, nullable=False, server_default="0"),
    Column("min_hardship_level", SmallInteger, nullable=False, server_default="0"),
    Column("annual", Boolean, nullable=False, server_default="0"),
    Column("status", SmallInteger, nullable=False, server_default="1"),
    _ts("event_at"),
)

project_tier = Table(
    "project_tier",
    metadata,
    Column("project_code", String(ID), primary_key=True),
    Column("amount_fen", BigInteger, primary_key=True),
)

project_exclusion = Table(
    "project_exclusion",
    metadata,
    Column("project_code", String(ID), primary_key=True),
    Column("other_project_code", String(ID), primary_key=True),
    # ExclusionScope: 1 same school year, 2 same term.
    Column("scope", SmallInteger, nullable=False),
)

period = Table(
    "period",
    metadata,
    Column("period_key", BigIntPK, primary_key=True, autoincrement=True),
    Column("school_year", String(9), nullable=False),
    Column("term", SmallInteger, nullable=False),
    # 0 known only from records, 1 open (compared), 2 closed.
    Column("status", SmallInteger, nullable=False, server_default="0"),
    Column("starts_on", String(10), nullable=False, server_default=""),
    Column("ends_on", String(10), nullable=False, server_default=""),
    Column("deadline_on", String(10), nullable=False, server_default=""),
    _ts("event_at"),
    UniqueConstraint("school_year", "term", name="uq_period_year_term"),
)

aid_record = Table(
    "aid_record",
    metadata,
    Column("record_id", String(ID), primary_key=True),
    Column("student_key", BigInteger, nullable=False),
    Column("period_key", BigInteger, nullable=False),
    Column("project_code", String(ID), nullable=False),
    Column("category", SmallInteger, nullable=False),
    Column("school_org_code", String(CODE), nullable=False),
    Column("school_org_path", String(PATH), nullable=False),
    Column("stage", SmallInteger, nullable=False, server_default="0"),
    Column("amount_fen", BigInteger, nullable=False),
    Column("id_number_blind_index", String(ID), nullable=False, server_default=""),
    # The name entered on the record (R05 compares it with the 学籍 name); "" when unknown.
    Column("student_name", String(100), nullable=False, server_default=""),
    # RecordStatus: 5 approved, 6 revoked (terminal).
    Column("status", SmallInteger, nullable=False),
    _ts("approved_at"),
    _ts("revoked_at"),
    Index("ix_aid_record_period_student", "period_key", "student_key"),
)

# The funded set, maintained on ingest: approved need-based (助困) records per period × student.
funded_student = Table(
    "funded_student",
    metadata,
    Column("period_key", BigInteger, primary_key=True),
    Column("student_key", BigInteger, primary_key=True),
    Column("records", Integer, nullable=False),
)

recognition = Table(
    "recognition",
    metadata,
    Column("student_key", BigInteger, primary_key=True),
    Column("school_year", String(9), primary_key=True),
    Column("term", SmallInteger, primary_key=True),
    Column("level", SmallInteger, nullable=False),
    _ts("event_at"),
)

allocation = Table(
    "allocation",
    metadata,
    Column("allocation_id", String(ID), primary_key=True),
    Column("project_code", String(ID), nullable=False),
    Column("fiscal_year", String(4), nullable=False),
    Column("to_org_code", String(CODE), nullable=False),
    Column("to_org_path", String(PATH), nullable=False),
    Column("amount_fen", BigInteger, nullable=False),
    Column("reversed", Boolean, nullable=False, server_default="0"),
    Index("ix_allocation_project_year", "project_code", "fiscal_year"),
)

# Students whose memberships, enrolment or funding changed since the last run over the whole
# tree (set by the consumers; `mark` grows at each change so a run only forgets what it saw).
dirty_student = Table(
    "dirty_student",
    metadata,
    Column("student_key", BigInteger, primary_key=True),
    Column("mark", BigInteger, nullable=False),
)

READ_COPY = (
    org,
    student,
    enrollment,
    membership,
    project,
    project_tier,
    project_exclusion,
    period,
    aid_record,
    funded_student,
    recognition,
    allocation,
)

# --- reconcile's own records --------------------------------------------------------------------

comparison_run = Table(
    "comparison_run",
    metadata,
    Column("run_id", String(ID), primary_key=True),
    Column("trigger", SmallInteger, nullable=False),
    # [["2024-2025", 1], …]
    Column("periods", Text, nullable=False),
    Column("org_code", String(CODE), nullable=False, server_default=""),
    Column("org_path", String(PATH), nullable=False),
    Column("include_verification", Boolean, nullable=False),
    # RunStatus: 1 running, 2 succeeded, 3 failed.
    Column("status", SmallInteger, nullable=False),
    Column("triggered_by", String(ID), nullable=False),
    Column("schedule_slot", String(40)),
    _ts("started_at", nullable=False),
    _ts("finished_at"),
    Column("duration_ms", BigInteger, nullable=False, server_default="0"),
    Column("students_checked", BigInteger, nullable=False, server_default="0"),
    Column("students_funded", BigInteger, nullable=False, server_default="0"),
    Column("unfunded_opened", BigInteger, nullable=False, server_default="0"),
    Column("unfunded_closed", BigInteger, nullable=False, server_default="0"),
    Column("unfunded_reopened", BigInteger, nullable=False, server_default="0"),
    Column("unfunded_open", BigInteger, nullable=False, server_default="0"),
    Column("findings_raised", BigInteger, nullable=False, server_default="0"),
    Column("findings_cleared", BigInteger, nullable=False, server_default="0"),
    Column("period_counts", Text, nullable=False, server_default="[]"),
    Column("error_message", Text, nullable=False, server_default=""),
    Index("ix_comparison_run_started", "started_at"),
    Index("ix_comparison_run_slot", "schedule_slot"),
)

unfunded_entry = Table(
    "unfunded_entry",
    metadata,
    Column("entry_key", BigIntPK, primary_key=True, autoincrement=True),
    Column("period_key", BigInteger, nullable=False),
    Column("student_key", BigInteger, nullable=False),
    Column("school_org_code", String(CODE), nullable=False),
    Column("school_org_path", String(PATH), nullable=False),
    Column("school_name", String(200), nullable=False, server_default=""),
    Column("stage", SmallInteger, nullable=False, server_default="0"),
    Column("grade", String(40), nullable=False, server_default=""),
    Column("class_name", String(60), nullable=False, server_default=""),
    # Bit g-1 set when the student is in group g (from any source / issued / self-collected).
    Column("groups_mask", Integer, nullable=False),
    Column("issued_mask", Integer, nullable=False),
    Column("self_mask", Integer, nullable=False),
    # UnfundedStatus: 1 open, 2 funded, 3 not eligible.
    Column("status", SmallInteger, nullable=False),
    _ts("first_found_at", nullable=False),
    _ts("reopened_at"),
    _ts("closed_at"),
    Column("last_run_id", String(ID), nullable=False),
    # The school's reason (未资助原因); NULL until reported.
    Column("reason_code", String(4)),
    Column("reason_note", Text, nullable=False, server_default=""),
    Column("reason_by", String(ID), nullable=False, server_default=""),
    Column("reason_org_code", String(CODE), nullable=False, server_default=""),
    _ts("reason_at"),
    Column("reason_carried_over", Boolean, nullable=False, server_default="0"),
    UniqueConstraint("period_key", "student_key", name="uq_unfunded_entry_period_student"),
    Index(
        "ix_unfunded_entry_scope",
        "period_key",
        "status",
        "school_org_path",
        postgresql_ops={"school_org_path": "varchar_pattern_ops"},
    ),
)

entry_authority_reason = Table(
    "entry_authority_reason",
    metadata,
    Column("entry_key", BigInteger, primary_key=True),
    Column("org_level", SmallInteger, primary_key=True),
    Column("org_code", String(CODE), nullable=False),
    Column("org_name", String(200), nullable=False, server_default=""),
    Column("reason_code", String(4), nullable=False),
    Column("note", Text, nullable=False, server_default=""),
    Column("reported_by", String(ID), nullable=False),
    _ts("reported_at", nullable=False),
)

authority_statement = Table(
    "authority_statement",
    metadata,
    Column("org_code", String(CODE), primary_key=True),
    Column("period_key", BigInteger, primary_key=True),
    # 0 = all groups.
    Column("special_group", SmallInteger, primary_key=True),
    Column("org_path", String(PATH), nullable=False),
    Column("org_level", SmallInteger, nullable=False),
    Column("org_name", String(200), nullable=False, server_default=""),
    Column("reason_code", String(4), nullable=False),
    Column("note", Text, nullable=False, server_default=""),
    Column("reported_by", String(ID), nullable=False),
    _ts("reported_at", nullable=False),
)

# The compared population of each period as of its last run (one row per special-group student
# enrolled in the period): what an incremental run updates for the students that changed.
candidate = Table(
    "candidate",
    metadata,
    Column("period_key", BigInteger, primary_key=True),
    Column("student_key", BigInteger, primary_key=True),
    Column("school_org_code", String(CODE), nullable=False),
    Column("school_org_path", String(PATH), nullable=False),
    Column("school_name", String(200), nullable=False),
    Column("stage", SmallInteger, nullable=False),
    Column("grade", String(40), nullable=False),
    Column("class_name", String(60), nullable=False),
    Column("groups_mask", Integer, nullable=False),
    Column("issued_mask", Integer, nullable=False),
    Column("self_mask", Integer, nullable=False),
    Column("funded", SmallInteger, nullable=False),
)

# Per period, what the last run over the whole tree left: the baseline an incremental run
# starts from (its as-of day and the period's dates; a change of dates forces a full run).
period_state = Table(
    "period_state",
    metadata,
    Column("period_key", BigInteger, primary_key=True),
    Column("as_of", String(10), nullable=False),
    Column("starts_on", String(10), nullable=False),
    Column("ends_on", String(10), nullable=False),
    Column("run_id", String(ID), nullable=False),
)

# Special-group population of the last run per school × stage × group × source, for statistics.
population_stat = Table(
    "population_stat",
    metadata,
    Column("period_key", BigInteger, primary_key=True),
    Column("school_org_code", String(CODE), primary_key=True),
    Column("stage", SmallInteger, primary_key=True),
    # 0 = all groups (distinct students).
    Column("special_group", SmallInteger, primary_key=True),
    # 1 issued only, 2 self-collected only, 3 both.
    Column("source_mask", SmallInteger, primary_key=True),
    Column("school_org_path", String(PATH), nullable=False),
    Column("students", BigInteger, nullable=False),
    Column("funded", BigInteger, nullable=False),
)

reason_code = Table(
    "reason_code",
    metadata,
    Column("code", String(4), primary_key=True),
    Column("label", String(60), nullable=False),
    Column("description", String(200), nullable=False, server_default=""),
    Column("requires_note", Boolean, nullable=False, server_default="0"),
    Column("enabled", Boolean, nullable=False, server_default="1"),
    Column("sort_order", Integer, nullable=False, server_default="0"),
    Column("updated_by", String(ID), nullable=False, server_default=""),
    _ts("updated_at"),
)

reason_dictionary = Table(
    "reason_dictionary",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version", BigInteger, nullable=False),
)

legacy_report = Table(
    "legacy_report",
    metadata,
    Column("legacy_key", BigIntPK, primary_key=True, autoincrement=True),
    # Stable over re-imports: period, project and person.
    Column("legacy_id", String(80), nullable=False, unique=True),
    Column("period_key", BigInteger, nullable=False),
    Column("project_code", String(ID), nullable=False),
    Column("project_name", String(200), nullable=False, server_default=""),
    Column("id_type", SmallInteger, nullable=False),
    Column("id_number_blind_index", String(ID), nullable=False),
    Column("id_number_masked", String(32), nullable=False),
    Column("student_name", String(100), nullable=False),
    Column("school_org_code", String(CODE), nullable=False),
    Column("school_org_path", String(PATH), nullable=False),
    Column("school_name", String(200), nullable=False, server_default=""),
    Column("legacy_reason", Text, nullable=False, server_default=""),
    Column("reason_code", String(4), nullable=False),
    Column("note", Text, nullable=False, server_default=""),
    Column("reported_by", String(100), nullable=False, server_default=""),
    _ts("reported_at"),
    _ts("imported_at", nullable=False),
    Index(
        "ix_legacy_report_scope",
        "period_key",
        "school_org_path",
        postgresql_ops={"school_org_path": "varchar_pattern_ops"},
    ),
    Index("ix_legacy_report_blind_index", "id_number_blind_index"),
)

finding = Table(
    "finding",
    metadata,
    Column("finding_key", BigIntPK, primary_key=True, autoincrement=True),
    Column("fingerprint", String(400), nullable=False, unique=True),
    Column("rule_code", String(4), nullable=False),
    Column("severity", SmallInteger, nullable=False),
    Column("status", SmallInteger, nullable=False),
    Column("period_key", BigInteger, nullable=False),
    Column("org_code", String(CODE), nullable=False),
    Column("org_path", String(PATH), nullable=False),
    Column("student_key", BigInteger),
    Column("student_id", String(ID), nullable=False, server_default=""),
    Column("project_code", String(ID), nullable=False, server_default=""),
    Column("record_ids", Text, nullable=False, server_default="[]"),
    Column("summary", Text, nullable=False),
    Column("facts", Text, nullable=False, server_default="{}"),
    Column("run_id", String(ID), nullable=False),
    _ts("found_at", nullable=False),
    _ts("last_seen_at", nullable=False),
    Column("resolution_note", Text, nullable=False, server_default=""),
    Column("resolved_by", String(ID), nullable=False, server_default=""),
    _ts("resolved_at"),
    Index(
        "ix_finding_scope",
        "period_key",
        "org_path",
        **_PATTERN,
    ),
)

finding_action = Table(
    "finding_action",
    metadata,
    Column("action_key", BigIntPK, primary_key=True, autoincrement=True),
    Column("finding_key", BigInteger, nullable=False),
    Column("from_status", SmallInteger, nullable=False),
    Column("to_status", SmallInteger, nullable=False),
    Column("note", Text, nullable=False, server_default=""),
    Column("actor", String(ID), nullable=False),
    Column("actor_org_code", String(CODE), nullable=False, server_default=""),
    Column("run_id", String(ID), nullable=False, server_default=""),
    _ts("at", nullable=False),
    Index("ix_finding_action_finding", "finding_key"),
)

quota = Table(
    "quota",
    metadata,
    Column("project_code", String(ID), primary_key=True),
    Column("school_year", String(9), primary_key=True),
    Column("org_code", String(CODE), primary_key=True),
    Column("org_path", String(PATH), nullable=False),
    Column("org_name", String(200), nullable=False, server_default=""),
    Column("places", BigInteger, nullable=False),
    Column("set_by", String(ID), nullable=False),
    _ts("set_at", nullable=False),
)
