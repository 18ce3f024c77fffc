"""Running a service: migrations, database, NATS stream, outbox relay, consumers, gRPC, signals.

Each service's `wiring.py` is its composition root: it builds a ServiceRuntime, creates its own
servicers and consumers with the runtime's database, outbox and clients, and calls `serve`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from pathlib import Path
from typing import Any

from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from redis.asyncio import Redis
from sqlalchemy import MetaData

from zizhu_common.consumer import DurableConsumer, Handler
from zizhu_common.db import Database
from zizhu_common.messaging import connect_nats, ensure_producer_stream, stream_for
from zizhu_common.migrations import upgrade_to_head
from zizhu_common.outbox import Outbox, OutboxRelay
from zizhu_common.redis_client import connect_redis
from zizhu_common.retention import purge_messaging
from zizhu_common.rpc import GrpcServer
from zizhu_common.settings import ServiceSettings

log = logging.getLogger(__name__)

PURGE_INTERVAL_S = 3600.0
# How long closing one connection (NATS, Redis) may take at shutdown.
CLOSE_TIMEOUT_S = 2.0


class ServiceRuntime:
    """The infrastructure one service runs on, started and stopped in a fixed order."""

    def __init__(
        self,
        *,
        settings: ServiceSettings,
        producer: str,
        metadata: MetaData,
        migrations_dir: Path,
    ) -> None:
        self.settings = settings
        self.producer = producer
        self.migrations_dir = migrations_dir
        self.db = Database(settings.database_url)
        self.outbox = Outbox(metadata.tables["outbox_event"], producer=producer)
        self.processed_table = metadata.tables["processed_event"]
        self.nc: NatsClient | None = None
        self.js: JetStreamContext | None = None
        self.redis: Redis | None = None
        self.grpc = GrpcServer(host=settings.grpc_host, port=settings.grpc_port, service_names=[])
        self.relay: OutboxRelay | None = None
        self.consumers: list[DurableConsumer] = []
        self._background: list[Callable[[asyncio.Event], Coroutine[Any, Any, None]]] = []

    def migrate(self) -> None:
        """Apply pending migrations (blocking)."""
        upgrade_to_head(
            script_location=self.migrations_dir, database_url=self.settings.database_url
        )

    async def start_infrastructure(self) -> None:
        """Migrate, connect NATS (ensuring the service's stream) and Redis."""
        await asyncio.to_thread(self.migrate)
        self.nc = await connect_nats(self.settings.nats_url, name=f"{self.producer}-service")
        self.js = self.nc.jetstream(timeout=10)
        await ensure_producer_stream(
            self.js,
            producer=self.producer,
            duplicate_window_s=self.settings.nats_duplicate_window_s,
            replicas=self.settings.nats_stream_replicas,
        )
        self.redis = connect_redis(self.settings.redis_url)
        self.relay = OutboxRelay(
            db=self.db,
            outbox=self.outbox,
            js=self.js,
            batch_size=self.settings.outbox_batch_size,
            poll_interval_s=self.settings.outbox_poll_interval_s,
        )

    def add_grpc(self, add_to_server: Callable[[Any, Any], None], servicer: Any, name: str) -> None:
        """Serve a generated servicer under its full service name."""
        self.grpc.add(add_to_server, servicer)
        self.grpc.service_names.append(name)

    async def add_consumer(
        self,
        *,
        source: str,
        durable: str,
        subjects: list[str],
        handler: Handler,
        in_flight: int = 1,
    ) -> DurableConsumer:
        """Consume another producer's events idempotently into this service's database
        (`in_flight` batches at once on PostgreSQL, for handlers whose writes commute)."""
        assert self.js is not None, "start_infrastructure() first"
        stream = await ensure_producer_stream(
            self.js,
            producer=source,
            duplicate_window_s=self.settings.nats_duplicate_window_s,
            replicas=self.settings.nats_stream_replicas,
        )
        assert stream == stream_for(source)
        consumer = DurableConsumer(
            js=self.js,
            db=self.db,
            table=self.processed_table,
            stream=stream,
            durable=durable,
            subjects=subjects,
            handler=handler,
            batch_size=self.settings.consumer_batch_size,
            in_flight=in_flight,
        )
        self.consumers.append(consumer)
        return consumer

    def add_background(self, job: Callable[[asyncio.Event], Coroutine[Any, Any, None]]) -> None:
        """Run a long-lived job (e.g. a scheduler) until stop."""
        self._background.append(job)

    async def serve(self, stop: asyncio.Event) -> None:
        """Serve gRPC, relay the outbox and run consumers until stop is set; then shut down."""
        assert self.relay is not None, "start_infrastructure() first"
        await self.grpc.start()
        tasks = [asyncio.create_task(self.relay.run(stop), name="outbox-relay")]
        tasks += [asyncio.create_task(c.run(stop), name=c.durable) for c in self.consumers]
        tasks += [asyncio.create_task(job(stop)) for job in self._background]
        if self.settings.outbox_retention_h > 0 and self.settings.processed_retention_h > 0:
            tasks.append(asyncio.create_task(self._purge_hourly(stop), name="retention"))
        log.info("%s service ready", self.producer)
        await stop.wait()
        log.info("%s service stopping", self.producer)
        await self.grpc.stop(grace=5.0)
        # The relay and consumers return within one poll; a job still running after the grace
        # period is cancelled, which is safe: its transaction rolls back and unacked messages
        # and unmarked outbox rows are delivered again (idempotently) after the restart.
        _done, pending = await asyncio.wait(tasks, timeout=10.0)
        for task in pending:
            log.warning("cancelling %s at shutdown", task.get_name())
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for task, result in zip(tasks, results, strict=True):
            if isinstance(result, Exception):
                log.error("%s failed at shutdown: %r", task.get_name(), result)
        await self.close()

    async def _purge_hourly(self, stop: asyncio.Event) -> None:
        """Delete old published outbox rows and processed ids, now and then every hour."""
        while not stop.is_set():
            try:
                await purge_messaging(
                    self.db,
                    outbox=self.outbox.table,
                    processed=self.processed_table,
                    outbox_keep=timedelta(hours=self.settings.outbox_retention_h),
                    processed_keep=timedelta(hours=self.settings.processed_retention_h),
                )
            except Exception:
                log.exception("retention purge failed; retrying in an hour")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=PURGE_INTERVAL_S)

    async def close(self) -> None:
        """Release connections (idempotent). Each is released even when another fails, and none
        is waited on for long: a service told to stop while NATS or Redis is unreachable still
        closes its database and exits 0."""
        if self.nc is not None and not self.nc.is_closed:
            # Every publish already awaited its JetStream ack and every consumer has returned, so
            # there is nothing to drain: flush what is buffered and close. (`drain()` waits on the
            # pull subscriptions' inboxes and, cut short by a timeout, leaves a failed gather.)
            # Disconnected, there is nothing to flush to.
            if self.nc.is_connected:
                try:
                    await asyncio.wait_for(self.nc.flush(), timeout=CLOSE_TIMEOUT_S)
                except Exception as exc:
                    log.warning("NATS flush on close failed: %r", exc)
            try:
                await asyncio.wait_for(self.nc.close(), timeout=CLOSE_TIMEOUT_S)
            except Exception as exc:
                log.warning("NATS close failed (the connection is dropped): %r", exc)
        if self.redis is not None:
            try:
                await asyncio.wait_for(self.redis.aclose(), timeout=CLOSE_TIMEOUT_S)
            except Exception as exc:
                log.warning("Redis close failed (the connection is dropped): %r", exc)
        await self.db.dispose()


def event_loop_factory(choice: str = "uvloop") -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The factory of the event loop named by the EVENT_LOOP setting for asyncio.Runner: uvloop's
    when chosen and installed (it is not on Windows), else None (the standard library's)."""
    if choice != "uvloop":
        return None
    try:
        import uvloop
    except ImportError:  # pragma: no cover - a dependency wherever uvloop builds
        log.warning("EVENT_LOOP=uvloop but uvloop is not installed: using asyncio's event loop")
        return None
    return uvloop.new_event_loop


def run_until_signalled(
    main: Callable[[asyncio.Event], Awaitable[None]],
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None,
) -> None:
    """Run main(stop) in a fresh event loop (from loop_factory, if given); SIGTERM and SIGINT
    set stop."""

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await main(stop)

    with asyncio.Runner(loop_factory=loop_factory) as runner_:
        runner_.run(runner())


def service_main(
    *,
    settings_factory: Callable[[], ServiceSettings],
    build: Callable[[ServiceSettings], Awaitable[ServiceRuntime]],
    migrate: Callable[[ServiceSettings], None],
    seed_demo: Callable[[ServiceSettings], Coroutine[Any, Any, list[dict[str, Any]]]] | None = None,
    argv: list[str] | None = None,
) -> int:
    """The `python -m <svc>_service serve|migrate|seed-demo` entry point of every service.

    `seed-demo` adds the service's part of the embedded default's demo data (idempotently, through
    the service's own use cases and outbox) and prints the demo logins it knows as JSON."""
    import json
    import sys

    from zizhu_common.logs import configure_logging

    args = sys.argv[1:] if argv is None else argv
    command = args[0] if args else "serve"
    if command not in ("serve", "migrate", "seed-demo"):
        sys.stderr.write("usage: python -m <service> [serve|migrate|seed-demo]\n")
        return 2
    settings = settings_factory()
    configure_logging(
        service=settings.service_name, level=settings.log_level, json_output=settings.log_json
    )
    if command == "migrate":
        migrate(settings)
        return 0
    if command == "seed-demo":
        migrate(settings)
        logins = asyncio.run(seed_demo(settings)) if seed_demo is not None else []
        sys.stdout.write(json.dumps(logins, ensure_ascii=False) + "\n")
        return 0

    async def serve(stop: asyncio.Event) -> None:
        runtime = await build(settings)
        await runtime.serve(stop)

    run_until_signalled(serve, event_loop_factory(settings.event_loop))
    return 0
