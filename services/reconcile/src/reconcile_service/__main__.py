"""`python -m reconcile_service serve|migrate|rebuild|seed-demo`.

`rebuild` empties the event-fed read copy and deletes the durable consumers; the next `serve`
replays identity, roster, aid and funding from the start of their streams. Stop every replica
first: a running one would keep consuming with its old position.

`seed-demo` writes reconcile's part of the demo data (demo.py) next to a running service: it
waits for the service's consumers to copy the other demos' students, then loads the history and
runs the first comparison; its events are relayed by the running service. Prints a JSON summary.
"""

import asyncio
import json
import sys

from zizhu_common.db import Database
from zizhu_common.logs import configure_logging
from zizhu_common.messaging import connect_nats
from zizhu_common.runtime import service_main

from reconcile_service import wiring
from reconcile_service.settings import Settings


def _rebuild(settings: Settings) -> int:
    wiring.migrate(settings)

    async def run() -> None:
        nc = await connect_nats(settings.nats_url, name="reconcile-rebuild")
        db = Database(settings.database_url)
        try:
            await wiring.rebuild_read_copy(db, nc.jetstream(timeout=10))
        finally:
            await db.dispose()
            await nc.close()

    asyncio.run(run())
    return 0


def _seed_demo(settings: Settings) -> int:
    wiring.migrate(settings)

    async def run() -> dict[str, int]:
        from zizhu_common.outbox import Outbox
        from zizhu_common.redis_client import connect_redis

        from reconcile_service import tables
        from reconcile_service.demo import seed_demo

        db = Database(settings.database_url)
        redis = connect_redis(settings.redis_url)
        try:
            services = wiring.build_services(
                settings, db=db, outbox=Outbox(tables.outbox_event, producer="reconcile"),
                redis=redis,
            )  # fmt: skip
            return await seed_demo(services)
        finally:
            await redis.aclose()
            await db.dispose()

    sys.stdout.write(json.dumps(asyncio.run(run())) + "\n")
    return 0


def main() -> int:
    """Entry point of the reconcile-service command."""
    if sys.argv[1:2] == ["seed-demo"]:
        settings = Settings()
        configure_logging(
            service=settings.service_name, level=settings.log_level, json_output=settings.log_json
        )
        return _seed_demo(settings)
    if sys.argv[1:2] == ["rebuild"]:
        settings = Settings()
        configure_logging(
            service=settings.service_name, level=settings.log_level, json_output=settings.log_json
        )
        return _rebuild(settings)
    return service_main(settings_factory=Settings, build=wiring.build, migrate=wiring.migrate)


if __name__ == "__main__":
    sys.exit(main())
