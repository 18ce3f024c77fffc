"""The gRPC plumbing over a real channel: caller context, error mapping, health, no tracebacks."""

from __future__ import annotations

import asyncio
import json

import grpc
import pytest
from zizhu_common.errors import (
    ERROR_TRAILER,
    FailedPrecondition,
    NotFound,
    error_from_rpc,
    http_status,
)
from zizhu_common.rpc import (
    CHANNEL_OPTIONS,
    CallerContext,
    GrpcServer,
    check_health,
    current_caller,
    open_channel,
)

CALLER = CallerContext(
    account_id="acc-1",
    org_code="440106",
    org_path="/000000/440000/440100/440106/",
    level="county",
    roles=frozenset({"operator", "viewer"}),
    request_id="req-42",
)


def _raw(fn):
    return grpc.unary_unary_rpc_method_handler(
        fn, request_deserializer=None, response_serializer=None
    )


async def _whoami(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    caller = current_caller()
    return json.dumps(
        {
            "account": caller.account_id,
            "path": caller.org_path,
            "level": caller.level,
            "roles": sorted(caller.roles),
            "rid": caller.request_id,
        }
    ).encode()


async def _refuse(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    if request == b"missing":
        raise NotFound("学生不存在", code="STUDENT_NOT_FOUND", field="student_id")
    raise FailedPrecondition(
        "录入时间已截止（2024-09-01 至 2025-01-31）",
        code="WINDOW_CLOSED",
        field="period",
        details={"window_end": "2025-01-31"},
    )


async def _slow(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    await asyncio.sleep(float(request.decode()))
    return b"done"


async def _crash(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    raise RuntimeError("secret internal detail /etc/passwd")


@pytest.fixture
async def server():
    srv = GrpcServer(host="127.0.0.1", port=0, service_names=["zizhu.test.Plumbing"])
    srv.server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "zizhu.test.Plumbing",
                {
                    "WhoAmI": _raw(_whoami),
                    "Refuse": _raw(_refuse),
                    "Crash": _raw(_crash),
                    "Slow": _raw(_slow),
                },
            ),
        )
    )
    await srv.start()
    yield srv
    await srv.stop(grace=0.1)


async def _call(port: int, method: str, payload: bytes, metadata=None) -> bytes:
    async with open_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary(f"/zizhu.test.Plumbing/{method}")
        return await call(payload, metadata=metadata, timeout=5)


async def test_caller_context_travels_in_metadata(server: GrpcServer) -> None:
    body = json.loads(await _call(server.port, "WhoAmI", b"", CALLER.to_metadata()))
    assert body == {
        "account": "acc-1",
        "path": "/000000/440000/440100/440106/",
        "level": "county",
        "roles": ["operator", "viewer"],
        "rid": "req-42",
    }


async def test_call_without_caller_is_unauthenticated(server: GrpcServer) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await _call(server.port, "WhoAmI", b"")
    err = error_from_rpc(info.value)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert err.code == "CALLER_CONTEXT_MISSING"
    assert http_status(err) == 401


async def test_domain_errors_keep_code_chinese_message_and_field(server: GrpcServer) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await _call(server.port, "Refuse", b"missing", CALLER.to_metadata())
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    err = error_from_rpc(info.value)
    assert (err.code, err.message, err.field) == ("STUDENT_NOT_FOUND", "学生不存在", "student_id")
    assert http_status(err) == 404

    with pytest.raises(grpc.aio.AioRpcError) as info:
        await _call(server.port, "Refuse", b"window", CALLER.to_metadata())
    err = error_from_rpc(info.value)
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert err.code == "WINDOW_CLOSED" and "2025-01-31" in err.message
    assert err.details == {"window_end": "2025-01-31"}
    assert http_status(err) == 409


async def test_unexpected_error_is_internal_without_details(server: GrpcServer) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await _call(server.port, "Crash", b"", CALLER.to_metadata())
    assert info.value.code() == grpc.StatusCode.INTERNAL
    assert "passwd" not in (info.value.details() or "")
    assert not any(k == ERROR_TRAILER for k, _ in info.value.trailing_metadata() or ())
    assert error_from_rpc(info.value).code == "INTERNAL"


async def test_health_reports_serving_then_not_serving_on_shutdown() -> None:
    srv = GrpcServer(host="127.0.0.1", port=0, service_names=["zizhu.test.Plumbing"])
    await srv.start()
    async with open_channel(f"127.0.0.1:{srv.port}") as channel:
        assert await check_health(channel) == "SERVING"
        assert await check_health(channel, service="zizhu.test.Plumbing") == "SERVING"
        assert await check_health(channel, service="nope") == "UNKNOWN_SERVICE"
        await srv.health.enter_graceful_shutdown()
        assert await check_health(channel) == "NOT_SERVING"
    await srv.stop(grace=0.1)
    async with open_channel(f"127.0.0.1:{srv.port}") as channel:
        assert await check_health(channel, deadline_s=0.5) == "UNREACHABLE"


def test_scope_is_a_prefix_of_the_materialised_path() -> None:
    assert CALLER.in_scope("/000000/440000/440100/440106/4444010001/")
    assert not CALLER.in_scope("/000000/440000/440100/440111/4444010002/")
    assert not CALLER.in_scope("/000000/440000/440100/")


async def test_long_silent_call_survives_client_keepalive_pings(server: GrpcServer) -> None:
    """A bulk call silent for a long time must not die with "too many pings".

    The client here pings every 200 ms with no limit (production pings every
    30 s); with gRPC's default server policy the third early ping is answered
    with GOAWAY and the call fails UNAVAILABLE.
    """
    options = [
        *[o for o in CHANNEL_OPTIONS if not o[0].startswith("grpc.keepalive")],
        ("grpc.keepalive_time_ms", 200),
        ("grpc.keepalive_timeout_ms", 1_000),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.keepalive_permit_without_calls", 1),
    ]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}", options=options) as channel:
        slow = channel.unary_unary("/zizhu.test.Plumbing/Slow")
        assert await slow(b"4", metadata=CALLER.to_metadata(), timeout=10) == b"done"
        whoami = channel.unary_unary("/zizhu.test.Plumbing/WhoAmI")
        assert json.loads(await whoami(b"", metadata=CALLER.to_metadata(), timeout=5))["rid"]


async def test_each_call_gets_its_own_caller_through_the_cached_handler(
    server: GrpcServer,
) -> None:
    """The interceptor builds each method's wrapper once; callers and request ids still come from
    each call's own metadata, also for calls in flight together."""
    callers = [
        CallerContext(
            account_id=f"acc-{i}",
            org_code="440106",
            org_path=f"/000000/44000{i}/",
            level="province",
            roles=frozenset({"viewer"}),
            request_id=f"req-{i}",
        )
        for i in range(6)
    ]
    async with open_channel(f"127.0.0.1:{server.port}") as channel:
        call = channel.unary_unary("/zizhu.test.Plumbing/WhoAmI")
        answers = await asyncio.gather(
            *(call(b"", metadata=c.to_metadata(), timeout=5) for c in callers)
        )
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call(b"", timeout=5)  # the cached wrapper, without a caller
    assert [json.loads(a)["account"] for a in answers] == [c.account_id for c in callers]
    assert [json.loads(a)["rid"] for a in answers] == [c.request_id for c in callers]
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_unknown_method_is_unimplemented_every_time(server: GrpcServer) -> None:
    async with open_channel(f"127.0.0.1:{server.port}") as channel:
        call = channel.unary_unary("/zizhu.test.Plumbing/NoSuchMethod")
        for _ in range(2):  # an unknown method is not cached as anything
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await call(b"", metadata=CALLER.to_metadata(), timeout=5)
            assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
