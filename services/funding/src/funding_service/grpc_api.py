"""gRPC servicer of the funding service: proto in, service call, proto out (no SQL, no rules)."""

from zizhu_contracts.funding.v1 import funding_pb2, funding_pb2_grpc

SERVICE_NAME = funding_pb2.DESCRIPTOR.services_by_name["FundingService"].full_name


class FundingServicer(funding_pb2_grpc.FundingServiceServicer):
    """Serves zizhu_contracts.funding.v1.FundingService."""
