"""gRPC servicer of the reconcile service: proto in, service call, proto out (no SQL, no rules)."""

from zizhu_contracts.reconcile.v1 import reconcile_pb2, reconcile_pb2_grpc

SERVICE_NAME = reconcile_pb2.DESCRIPTOR.services_by_name["ReconcileService"].full_name


class ReconcileServicer(reconcile_pb2_grpc.ReconcileServiceServicer):
    """Serves zizhu_contracts.reconcile.v1.ReconcileService."""
