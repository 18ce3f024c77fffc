"""Composition root of the aid service."""

from pathlib import Path

from zizhu_common.migrations import upgrade_to_head
from zizhu_common.runtime import ServiceRuntime
from zizhu_contracts.aid.v1 import aid_pb2_grpc

from aid_service import tables
from aid_service.grpc_api import SERVICE_NAME, AidServicer
from aid_service.settings import Settings

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


def migrate(settings: Settings) -> None:
    """Bring the aid database to the latest schema."""
    upgrade_to_head(script_location=MIGRATIONS_DIR, database_url=settings.database_url)


async def build(settings: Settings) -> ServiceRuntime:
    """Start the infrastructure and register the aid servicer and consumers."""
    runtime = ServiceRuntime(
        settings=settings, producer="aid", metadata=tables.metadata, migrations_dir=MIGRATIONS_DIR
    )
    await runtime.start_infrastructure()
    runtime.add_grpc(aid_pb2_grpc.add_AidServiceServicer_to_server, AidServicer(), SERVICE_NAME)
    return runtime
