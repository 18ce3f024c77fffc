"""SQLAlchemy tables of the roster service (its own database).

Core tables rather than mapped classes: the roster's hot paths (学籍 sync, list matching) are
bulk statements over hundreds of thousands of rows, where ORM units of work cost too much.
Org paths use the "C" collation on PostgreSQL so that "inside a subtree" is a byte-order range
test (`path >= p AND path < p_end`) that an ordinary b-tree index answers, on both databases.
"""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    text,
)
from zizhu_common.consumer import processed_event_table
from zizhu_common.db import BigIntPK
from zizhu_common.outbox import outbox_table

metadata = MetaData()

outbox_event = outbox_table(metadata)
processed_event = processed_event_table(metadata)


def OrgPath() -> String:
    """A materialised org path compared byte-wise."""
    return String(400, collation="C").with_variant(String(400), "sqlite")  # type: ignore[return-value]


def _ts(name: str, nullable: bool = False) -> Column:
    return Column(name, DateTime(timezone=True), nullable=nullable)


# Read copy of identity's org tree (from identity.org.* events).
org_ref = Table(
    "org_ref",
    metadata,
    Column("org_code", String(20), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("level", String(16), nullable=False),
    Column("parent_code", String(20), nullable=True),
    Column("org_path", OrgPath(), nullable=False),
    Column("stages", String(40), nullable=False, server_default=""),
    Column("status", String(16), nullable=False, server_default="active"),
    Column("version", BigInteger, nullable=False, server_default="0"),
    _ts("updated_at"),
    Index("ix_org_ref_path", "org_path"),
)

# What matching an issued row reads of a student and of its current enrolment (covered by
# their PostgreSQL indexes below).
MATCH_STUDENT_COLUMNS = ("student_id", "name", "current_enrollment_id")
MATCH_ENROLLMENT_COLUMNS = ("school_org_code", "school_org_path", "stage", "status")

# A person known to 学籍 (keyed by the ID-number blind index, or by 学籍号 when it has no ID).
student = Table(
    "student",
    metadata,
    Column("student_id", String(32), primary_key=True),
    Column("id_type", SmallInteger, nullable=False),
    Column("id_number_enc", Text, nullable=True),
    Column("id_number_bi", String(64), nullable=True),
    Column("id_number_masked", String(40), nullable=False, server_default=""),
    Column("name", String(100), nullable=False),
    Column("gender", SmallInteger, nullable=False),
    Column("birth_date", String(10), nullable=False),
    Column("ethnicity", String(20), nullable=False, server_default=""),
    Column("household_type", SmallInteger, nullable=False, server_default="0"),
    Column("household_region_code", String(12), nullable=False, server_default=""),
    Column("phone_enc", Text, nullable=True),
    Column("phone_masked", String(20), nullable=False, server_default=""),
    Column("current_enrollment_id", String(32), nullable=True),
    Column("source_system", String(40), nullable=False, server_default=""),
    Column("created_batch_id", String(100), nullable=False, server_default=""),
    Column("last_batch_id", String(100), nullable=False, server_default=""),
    _ts("created_at"),
    _ts("updated_at"),
    _ts("synced_at"),
    Column("version", BigInteger, nullable=False, server_default="1"),
    # On PostgreSQL it carries what matching an issued row reads of the student (an index-only
    # probe per row of a million-row list, no visit to the wide student row).
    Index(
        "ux_student_id_number_bi",
        "id_number_bi",
        unique=True,
        postgresql_include=list(MATCH_STUDENT_COLUMNS),
    ),
    # Students changed since a time (a special-group batch re-matches them at its commit).
    Index("ix_student_updated", "updated_at"),
    Index("ix_student_name", "name"),
)

# One enrolment of a student at a school in a stage; the current one is the student's latest.
enrollment = Table(
    "enrollment",
    metadata,
    Column("enrollment_id", String(32), primary_key=True),
    Column("student_id", String(32), nullable=False),
    Column("school_org_code", String(20), nullable=False),
    Column("school_org_path", OrgPath(), nullable=False),
    Column("stage", SmallInteger, nullable=False),
    Column("student_number", String(40), nullable=False, server_default=""),
    Column("grade", String(20), nullable=False, server_default=""),
    Column("class_name", String(60), nullable=False, server_default=""),
    Column("major_name", String(100), nullable=False, server_default=""),
    Column("status", SmallInteger, nullable=False),
    Column("status_date", String(10), nullable=False, server_default=""),
    Column("enrolled_on", String(10), nullable=False, server_default=""),
    Column("left_on", String(10), nullable=False, server_default=""),
    Column("boarder", Boolean, nullable=False, server_default=text("false")),
    Column("is_current", Boolean, nullable=False, server_default=text("true")),
    _ts("created_at"),
    _ts("updated_at"),
    Column("version", BigInteger, nullable=False, server_default="1"),
    Index(
        "ux_enrollment_student_school_stage", "student_id", "school_org_code", "stage", unique=True
    ),
    Index("ix_enrollment_path", "school_org_path"),
    # PostgreSQL only: the current enrolment's fields matching reads, probed index-only (on SQLite
    # it would merely duplicate the primary key at every sync's cost).
    Index(
        "ix_enrollment_match", "enrollment_id", postgresql_include=list(MATCH_ENROLLMENT_COLUMNS)
    ).ddl_if(dialect="postgresql"),
    # 学籍号 looked up as themselves: J and L numbers (a G number is the masked ID number).
    Index(
        "ix_enrollment_student_number",
        "student_number",
        postgresql_where=text("student_number NOT LIKE 'G%'"),
        sqlite_where=text("student_number NOT LIKE 'G%'"),
    ),
)

# History of a student's record (学籍变动): person facts, enrolment changes, transfers.
student_change = Table(
    "student_change",
    metadata,
    Column("id", BigIntPK, primary_key=True, autoincrement=True),
    Column("student_id", String(32), nullable=False),
    Column("enrollment_id", String(32), nullable=True),
    Column("kind", String(32), nullable=False),
    Column("changed_fields", Text, nullable=False, server_default="[]"),
    Column("before", Text, nullable=False, server_default="{}"),
    Column("after", Text, nullable=False, server_default="{}"),
    Column("school_org_code", String(20), nullable=False, server_default=""),
    Column("source_system", String(40), nullable=False, server_default=""),
    Column("batch_id", String(100), nullable=False, server_default=""),
    Column("actor_account_id", String(64), nullable=False, server_default=""),
    _ts("occurred_at"),
    Index("ix_student_change_student", "student_id", "id"),
)

# A replayed SyncStudents batch answers what the first call answered.
sync_batch = Table(
    "sync_batch",
    metadata,
    Column("batch_id", String(100), primary_key=True),
    Column("account_id", String(64), nullable=False),
    Column("response", LargeBinary, nullable=False),
    _ts("created_at"),
)

# Staged and committed file imports (students, recognitions) with their full error list.
file_import = Table(
    "file_import",
    metadata,
    Column("import_id", String(32), primary_key=True),
    Column("kind", String(20), nullable=False),
    Column("org_code", String(20), nullable=False),
    Column("org_path", OrgPath(), nullable=False),
    Column("account_id", String(64), nullable=False),
    Column("file_name", String(200), nullable=False),
    Column("content", LargeBinary, nullable=True),
    Column("options", Text, nullable=False, server_default="{}"),
    Column("status", String(16), nullable=False),
    Column("total_rows", Integer, nullable=False, server_default="0"),
    Column("valid_rows", Integer, nullable=False, server_default="0"),
    Column("error_rows", Integer, nullable=False, server_default="0"),
    Column("created_count", Integer, nullable=False, server_default="0"),
    Column("updated_count", Integer, nullable=False, server_default="0"),
    Column("unchanged_count", Integer, nullable=False, server_default="0"),
    Column("errors", LargeBinary, nullable=True),
    _ts("created_at"),
    _ts("expires_at"),
    _ts("committed_at", nullable=True),
)

# A special-group list issued by the nation or a province (下发批次).
issue_batch = Table(
    "issue_batch",
    metadata,
    Column("batch_id", String(32), primary_key=True),
    Column("issuing_org_code", String(20), nullable=False),
    Column("issuing_org_path", OrgPath(), nullable=False),
    Column("title", String(200), nullable=False),
    Column("source_system", String(100), nullable=False, server_default=""),
    Column("groups", String(60), nullable=False),
    Column("mode", SmallInteger, nullable=False),
    Column("school_year", String(9), nullable=False),
    Column("as_of_date", String(10), nullable=False),
    Column("status", SmallInteger, nullable=False),
    Column("chunk_count", Integer, nullable=False, server_default="0"),
    Column("row_count", BigInteger, nullable=False, server_default="0"),
    Column("matched_count", BigInteger, nullable=False, server_default="0"),
    Column("not_found_count", BigInteger, nullable=False, server_default="0"),
    Column("not_enrolled_count", BigInteger, nullable=False, server_default="0"),
    Column("invalid_count", BigInteger, nullable=False, server_default="0"),
    Column("ambiguous_count", BigInteger, nullable=False, server_default="0"),
    Column("memberships_added", BigInteger, nullable=False, server_default="0"),
    Column("memberships_ended", BigInteger, nullable=False, server_default="0"),
    Column("previous_batch_id", String(32), nullable=False, server_default=""),
    Column("added_count", BigInteger, nullable=False, server_default="0"),
    Column("removed_count", BigInteger, nullable=False, server_default="0"),
    Column("changed_count", BigInteger, nullable=False, server_default="0"),
    Column("error_message", Text, nullable=False, server_default=""),
    Column("created_by", String(64), nullable=False),
    _ts("created_at"),
    _ts("updated_at"),
    _ts("committed_at", nullable=True),
    Column("version", BigInteger, nullable=False, server_default="1"),
    Index("ix_issue_batch_issuer", "issuing_org_path", "school_year"),
)

issue_chunk = Table(
    "issue_chunk",
    metadata,
    Column("batch_id", String(32), primary_key=True),
    Column("chunk_number", Integer, primary_key=True),
    Column("row_count", Integer, nullable=False),
    _ts("received_at"),
    # How often the chunk was received: above 1, the rows of an earlier delivery were replaced.
    Column("deliveries", Integer, nullable=False, server_default="1"),
)

# One row of an issue batch, with its match result.
issued_row = Table(
    "issued_row",
    metadata,
    Column("id", BigIntPK, primary_key=True, autoincrement=True),
    Column("batch_id", String(32), nullable=False),
    Column("chunk_number", Integer, nullable=False),
    Column("row_number", BigInteger, nullable=False),
    Column("special_group", SmallInteger, nullable=False),
    Column("action", SmallInteger, nullable=False),
    Column("name", String(100), nullable=False),
    Column("id_type", SmallInteger, nullable=False),
    Column("id_number_bi", String(64), nullable=True),
    Column("id_number_masked", String(40), nullable=False),
    # Ciphertext only for rows whose person is not (yet) a known student.
    Column("id_number_enc", Text, nullable=True),
    Column("household_region_code", String(12), nullable=False, server_default=""),
    Column("valid_from", String(10), nullable=False, server_default=""),
    Column("valid_to", String(10), nullable=False, server_default=""),
    Column("match_status", SmallInteger, nullable=False),
    Column("match_note", String(200), nullable=False, server_default=""),
    Column("student_id", String(32), nullable=True),
    Column("school_org_code", String(20), nullable=True),
    Column("school_org_path", OrgPath(), nullable=True),
    Column("stage", SmallInteger, nullable=True),
    Column("membership_id", BigInteger, nullable=True),
    Index("ix_issued_row_batch_bi", "batch_id", "id_number_bi"),
    Index("ix_issued_row_batch_path", "batch_id", "school_org_path"),
)

# A student's membership of one special group for one school year.
membership = Table(
    "membership",
    metadata,
    Column("id", BigIntPK, primary_key=True, autoincrement=True),
    Column("student_id", String(32), nullable=False),
    Column("school_year", String(9), nullable=False),
    Column("special_group", SmallInteger, nullable=False),
    Column("source", SmallInteger, nullable=False),
    Column("batch_id", String(32), nullable=True),
    Column("issued_row_id", BigInteger, nullable=True),
    Column("issuer_org_code", String(20), nullable=True),
    Column("last_batch_id", String(32), nullable=True),
    Column("school_org_code", String(20), nullable=False),
    Column("school_org_path", OrgPath(), nullable=False),
    Column("stage", SmallInteger, nullable=False),
    Column("valid_from", String(10), nullable=False, server_default=""),
    Column("valid_to", String(10), nullable=False, server_default=""),
    Column("status", SmallInteger, nullable=False),
    Column("verification_status", SmallInteger, nullable=False),
    Column("verification_note", Text, nullable=False, server_default=""),
    Column("verified_by", String(64), nullable=False, server_default=""),
    _ts("verified_at", nullable=True),
    Column("evidence_note", Text, nullable=False, server_default=""),
    Column("end_reason", Text, nullable=False, server_default=""),
    Column("ended_on", String(10), nullable=False, server_default=""),
    _ts("ended_at", nullable=True),
    Column("created_by", String(64), nullable=False),
    _ts("created_at"),
    _ts("updated_at"),
    Column("version", BigInteger, nullable=False, server_default="1"),
    Index("ix_membership_path", "school_org_path", "school_year"),
)
# A student's memberships by school year, and at most one active membership per student, group
# and year, in one index (migration roster_0007): the last key is 1 while the membership is
# active and NULL once ended, and NULLs never collide in a unique index.
Index(
    "ux_membership_student",
    membership.c.student_id,
    membership.c.school_year,
    membership.c.special_group,
    text("(CASE WHEN status = 1 THEN 1 END)"),
    unique=True,
)

# One recorded hardship level (认定) of a student for a school year, from a term on.
recognition = Table(
    "recognition",
    metadata,
    Column("id", BigIntPK, primary_key=True, autoincrement=True),
    Column("student_id", String(32), nullable=False),
    Column("school_org_code", String(20), nullable=False),
    Column("school_org_path", OrgPath(), nullable=False),
    Column("school_year", String(9), nullable=False),
    Column("term", SmallInteger, nullable=False),
    Column("level", SmallInteger, nullable=False),
    Column("basis_groups", String(60), nullable=False, server_default=""),
    Column("basis_note", Text, nullable=False, server_default=""),
    Column("recognized_on", String(10), nullable=False),
    Column("change_reason", Text, nullable=False, server_default=""),
    Column("is_current", Boolean, nullable=False),
    Column("recorded_by", String(64), nullable=False),
    _ts("recorded_at"),
    Column("version", BigInteger, nullable=False),
    Column("import_id", String(32), nullable=False, server_default=""),
    Index("ix_recognition_student", "student_id", "school_year"),
    Index("ix_recognition_path", "school_org_path", "school_year", "is_current"),
)

# Default level per special group, set by a province (or the nation as the fallback).
group_default_level = Table(
    "group_default_level",
    metadata,
    Column("org_code", String(20), primary_key=True),
    Column("special_group", SmallInteger, primary_key=True),
    Column("level", SmallInteger, nullable=False),
    Column("updated_by", String(64), nullable=False),
    _ts("updated_at"),
)
