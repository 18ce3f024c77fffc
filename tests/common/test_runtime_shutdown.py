"""A service told to stop while NATS is gone still shuts down cleanly: it exits 0, with no
traceback, after releasing what it still can (zizhu_common.runtime.ServiceRuntime.close), and
its consumers do not wait out JetStream requests that cannot be answered."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from zizhu_common import devservers

SERVICES = ("identity", "roster", "aid", "funding", "reconcile")
# A liveness bound, not a speed target (the runtime cancels what is left after 10 s, and each
# close is given 2 s).
EXIT_BOUND_S = 45


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"service not serving in 60 s:\n{log.read_text(errors='replace')[-3000:]}")


def test_service_stopped_after_nats_went_away_exits_0_without_a_traceback(
    tmp_path: Path, nats_server_factory, redis_server
) -> None:
    nats = nats_server_factory()
    port = devservers.free_port()
    env = {
        **os.environ,
        "ZIZHU_ENV": "dev",
        "NATS_URL": nats.url,
        "REDIS_URL": redis_server.url,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/roster.db",
        "GRPC_HOST": "127.0.0.1",
        "GRPC_PORT": str(port),
        "LOG_JSON": "false",
        **{f"{s.upper()}_ADDR": "127.0.0.1:9" for s in SERVICES},
    }
    log = tmp_path / "roster.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "roster_service", "serve"], env=env, stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        _wait_for_port(port, proc, log)
        nats.stop()
        time.sleep(1.0)  # the service notices: disconnected, reconnecting
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=EXIT_BOUND_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = log.read_text(errors="replace")
    assert code == 0, text[-3000:]
    assert "Traceback" not in text, text[-3000:]
    assert "roster service stopping" in text


async def test_consumer_told_to_stop_during_a_nats_outage_returns_at_once(
    tmp_path: Path, nats_server_factory
) -> None:
    """A consumer whose pull subscription is not open yet when NATS goes away is waiting on a
    JetStream request; stop must not wait for that request's timeout (30 s here)."""
    import asyncio
    import contextlib

    from sqlalchemy import MetaData
    from zizhu_common.consumer import DurableConsumer, processed_event_table
    from zizhu_common.db import Database
    from zizhu_common.messaging import connect_nats

    nats = nats_server_factory()
    nc = await connect_nats(nats.url, name="outage-test")
    js = nc.jetstream(timeout=30)
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/c.db")
    handled: list[object] = []

    async def handler(session, events) -> None:
        handled.extend(events)

    consumer = DurableConsumer(
        js=js, db=db, table=processed_event_table(MetaData()), stream="NOSUCH",
        durable="outage", subjects=["nosuch.>"], handler=handler,
    )  # fmt: skip
    try:
        nats.stop()
        await asyncio.sleep(0.5)  # disconnected: JetStream requests now wait to time out
        stop = asyncio.Event()
        task = asyncio.create_task(consumer.run(stop))
        await asyncio.sleep(0.5)
        assert not task.done()
        stop.set()
        # A liveness bound well under the request's 30-s timeout, not a speed target.
        await asyncio.wait_for(task, timeout=10)
    finally:
        with contextlib.suppress(Exception):  # nats-py's close fails on a lost connection
            await nc.close()
        await db.dispose()
    assert handled == []
