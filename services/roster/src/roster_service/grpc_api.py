"""gRPC servicer of the roster service: proto in, service call, proto out (no SQL, no rules)."""

from zizhu_contracts.roster.v1 import roster_pb2, roster_pb2_grpc

SERVICE_NAME = roster_pb2.DESCRIPTOR.services_by_name["RosterService"].full_name


class RosterServicer(roster_pb2_grpc.RosterServiceServicer):
    """Serves zizhu_contracts.roster.v1.RosterService."""
