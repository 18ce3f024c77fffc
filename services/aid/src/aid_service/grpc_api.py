"""gRPC servicer of the aid service: proto in, service call, proto out (no SQL, no rules)."""

from zizhu_contracts.aid.v1 import aid_pb2, aid_pb2_grpc

SERVICE_NAME = aid_pb2.DESCRIPTOR.services_by_name["AidService"].full_name


class AidServicer(aid_pb2_grpc.AidServiceServicer):
    """Serves zizhu_contracts.aid.v1.AidService."""
