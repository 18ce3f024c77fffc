"""Composition root of the funding service."""

from pathlib import Path

from zizhu_common.migrations import upgrade_to_head
from zizhu_common.runtime import ServiceRuntime
from zizhu_contracts.funding.v1 import funding_pb2_grpc

from funding_service import tables
from funding_service.grpc_api import SERVICE_NAME, FundingServicer
from funding_service.settings import Settings

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


def migrate(settings: Settings) -> None:
    """Bring the funding database to the latest schema."""
    upgrade_to_head(script_location=MIGRATIONS_DIR, database_url=settings.database_url)


async def build(settings: Settings) -> ServiceRuntime:
    """Start the infrastructure and register the funding servicer and consumers."""
    runtime = ServiceRuntime(
        settings=settings,
        producer="funding",
        metadata=tables.metadata,
        migrations_dir=MIGRATIONS_DIR,
    )
    await runtime.start_infrastructure()
    runtime.add_grpc(
        funding_pb2_grpc.add_FundingServiceServicer_to_server, FundingServicer(), SERVICE_NAME
    )
    return runtime
