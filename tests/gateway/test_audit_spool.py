"""The gateway's audit spool: events recorded while NATS is away survive the worker's death and
are published by the next worker; a live worker's segment is never taken over."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

from gateway.audit import AuditPublisher
from gateway.audit_spool import AuditSpool, decode
from test_audit_events import fetch_gateway_events
from zizhu_common.devservers import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_a_record_cut_short_by_a_crash_is_ignored(tmp_path: Path) -> None:
    spool = AuditSpool(tmp_path)
    spool.open()
    spool.append(b"first")
    spool.append(b"second")
    assert spool.path is not None
    data = spool.path.read_bytes()
    assert decode(data) == [b"first", b"second"]
    assert decode(data[:-3]) == [b"first"]
    assert decode(data + b"\x00\x00") == [b"first", b"second"]
    spool.close()


def test_segment_is_read_in_order_and_emptied_when_all_is_published(tmp_path: Path) -> None:
    spool = AuditSpool(tmp_path)
    spool.open()
    for word in (b"a", b"bb", b"ccc"):
        spool.append(word)
    seen = []
    while (nxt := spool.peek()) is not None:
        end, record = nxt
        seen.append(record)
        spool.advance(end)
    assert seen == [b"a", b"bb", b"ccc"]
    assert spool.path is not None and spool.path.stat().st_size == 0
    spool.close()
    assert not list(tmp_path.glob("audit-*.spool"))  # an empty segment is removed


def test_a_live_segment_is_not_taken_over_a_dead_one_is(tmp_path: Path) -> None:
    live = AuditSpool(tmp_path)
    live.open()
    live.append(b"owned by a live worker")
    dead = tmp_path / "audit-999999-deadbeef.spool"
    dead.write_bytes(decode_roundtrip([b"left by a dead worker"]))
    newcomer = AuditSpool(tmp_path)
    assert newcomer.open() == [b"left by a dead worker"]
    assert not dead.exists()
    assert live.path is not None and live.path.exists()
    assert newcomer.peek() is not None and newcomer.peek()[1] == b"left by a dead worker"  # type: ignore[index]
    live.close()
    newcomer.close()


def decode_roundtrip(records: list[bytes]) -> bytes:
    return b"".join(len(r).to_bytes(4, "big") + r for r in records)


def test_events_of_a_worker_killed_while_nats_was_away_are_published_after_restart(
    tmp_path: Path, nats_server
) -> None:
    spool_dir = tmp_path / "spool"
    marker = uuid.uuid4().hex
    # A gateway worker whose NATS is unreachable records three events, then dies with SIGKILL's
    # exit (no shutdown code runs).
    script = textwrap.dedent(
        f"""
        import asyncio, os
        from gateway.audit import AuditNote, AuditPublisher, build_event

        async def main():
            pub = AuditPublisher("nats://127.0.0.1:{free_port()}", queue_size=10,
                                 publish_timeout_s=0.5, duplicate_window_s=120, replicas=1,
                                 spool_dir={str(spool_dir)!r})
            pub.start()
            for i in range(3):
                note = AuditNote(object_type="org", object_id=str(i), detail="{marker}")
                pub.record(build_event(action="org.retire", status=200, note=note,
                                       client_ip="10.0.0.2", user_agent="t"))
            await asyncio.sleep(0.3)
            os._exit(9)

        asyncio.run(main())
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          timeout=60)  # fmt: skip
    assert proc.returncode == 9, proc.stderr.decode()[-2000:]
    left = list(spool_dir.glob("audit-*.spool"))
    assert len(left) == 1 and len(decode(left[0].read_bytes())) == 3

    async def restart() -> AuditPublisher:
        pub = AuditPublisher(nats_server.url, queue_size=10, publish_timeout_s=5,
                             duplicate_window_s=120, replicas=1, spool_dir=str(spool_dir))  # fmt: skip
        pub.start()
        for _ in range(400):  # up to 20 s
            if pub.published >= 3:
                break
            await asyncio.sleep(0.05)
        await pub.stop()
        return pub

    pub = asyncio.run(restart())
    assert pub.published == 3
    mine = [e for e in fetch_gateway_events(nats_server.url) if e.detail == marker]
    assert sorted(e.object_id for e in mine) == ["0", "1", "2"]
    assert len({e.meta.event_id for e in mine}) == 3
    assert not list(spool_dir.glob("audit-*.spool")), os.listdir(spool_dir)
