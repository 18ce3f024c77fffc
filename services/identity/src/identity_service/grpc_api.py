"""gRPC servicer of the identity service: proto in, service call, proto out (no SQL, no rules)."""

from zizhu_contracts.identity.v1 import identity_pb2, identity_pb2_grpc

SERVICE_NAME = identity_pb2.DESCRIPTOR.services_by_name["IdentityService"].full_name


class IdentityServicer(identity_pb2_grpc.IdentityServiceServicer):
    """Serves zizhu_contracts.identity.v1.IdentityService."""
