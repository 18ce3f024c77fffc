"""Composition root of the roster service."""

from pathlib import Path

from zizhu_common.migrations import upgrade_to_head
from zizhu_common.runtime import ServiceRuntime
from zizhu_contracts.roster.v1 import roster_pb2_grpc

from roster_service import tables
from roster_service.grpc_api import SERVICE_NAME, RosterServicer
from roster_service.settings import Settings

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


def migrate(settings: Settings) -> None:
    """Bring the roster database to the latest schema."""
    upgrade_to_head(script_location=MIGRATIONS_DIR, database_url=settings.database_url)


async def build(settings: Settings) -> ServiceRuntime:
    """Start the infrastructure and register the roster servicer and consumers."""
    runtime = ServiceRuntime(
        settings=settings,
        producer="roster",
        metadata=tables.metadata,
        migrations_dir=MIGRATIONS_DIR,
    )
    await runtime.start_infrastructure()
    runtime.add_grpc(
        roster_pb2_grpc.add_RosterServiceServicer_to_server, RosterServicer(), SERVICE_NAME
    )
    return runtime
