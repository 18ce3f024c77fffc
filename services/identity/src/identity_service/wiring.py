"""Composition root of the identity service."""

from pathlib import Path

from zizhu_common.migrations import upgrade_to_head
from zizhu_common.runtime import ServiceRuntime
from zizhu_contracts.identity.v1 import identity_pb2_grpc

from identity_service import tables
from identity_service.grpc_api import SERVICE_NAME, IdentityServicer
from identity_service.settings import Settings

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


def migrate(settings: Settings) -> None:
    """Bring the identity database to the latest schema."""
    upgrade_to_head(script_location=MIGRATIONS_DIR, database_url=settings.database_url)


async def build(settings: Settings) -> ServiceRuntime:
    """Start the infrastructure and register the identity servicer and consumers."""
    runtime = ServiceRuntime(
        settings=settings,
        producer="identity",
        metadata=tables.metadata,
        migrations_dir=MIGRATIONS_DIR,
    )
    await runtime.start_infrastructure()
    runtime.add_grpc(
        identity_pb2_grpc.add_IdentityServiceServicer_to_server, IdentityServicer(), SERVICE_NAME
    )
    return runtime
