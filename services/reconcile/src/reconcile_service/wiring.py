"""Composition root of the reconcile service."""

from pathlib import Path

from zizhu_common.migrations import upgrade_to_head
from zizhu_common.runtime import ServiceRuntime
from zizhu_contracts.reconcile.v1 import reconcile_pb2_grpc

from reconcile_service import tables
from reconcile_service.grpc_api import SERVICE_NAME, ReconcileServicer
from reconcile_service.settings import Settings

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


def migrate(settings: Settings) -> None:
    """Bring the reconcile database to the latest schema."""
    upgrade_to_head(script_location=MIGRATIONS_DIR, database_url=settings.database_url)


async def build(settings: Settings) -> ServiceRuntime:
    """Start the infrastructure and register the reconcile servicer and consumers."""
    runtime = ServiceRuntime(
        settings=settings,
        producer="reconcile",
        metadata=tables.metadata,
        migrations_dir=MIGRATIONS_DIR,
    )
    await runtime.start_infrastructure()
    runtime.add_grpc(
        reconcile_pb2_grpc.add_ReconcileServiceServicer_to_server, ReconcileServicer(), SERVICE_NAME
    )
    return runtime
