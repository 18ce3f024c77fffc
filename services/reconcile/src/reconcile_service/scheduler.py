"""The daily comparison at 02:00 Asia/Shanghai (数据比对周期：每天凌晨 2 点).

Every replica runs this loop; the run lock lets one of them compare, and the runs table makes a
slot count once: a replica that starts late, or finds the slot's run failed or interrupted,
runs it again within the catch-up window, with the same result.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from zizhu_common.aio import wait_or_stop

from reconcile_service.domain.periods import latest_daily_slot, next_daily_slot, slot_name
from reconcile_service.service.runs import RunService
from reconcile_service.settings import Settings

log = logging.getLogger(__name__)
MAX_SLEEP_S = 900.0


class DailyScheduler:
    """Runs the comparison of each day's slot once across replicas."""

    def __init__(self, runs: RunService, settings: Settings, clock: Callable[[], datetime]) -> None:
        self.runs = runs
        self.settings = settings
        self.clock = clock

    async def run(self, stop: asyncio.Event) -> None:
        """Loop until stop: run the due slot, then sleep until the next check."""
        while not stop.is_set():
            try:
                delay = await self.tick()
            except Exception:
                log.exception("daily comparison check failed")
                delay = self.settings.daily_retry_interval_s
            await wait_or_stop(stop, delay)

    async def tick(self) -> float:
        """Run the latest slot if it is due and not done; returns seconds until the next check."""
        hour, minute = self.settings.daily_run_hour, self.settings.daily_run_minute
        now = self.clock()
        slot = latest_daily_slot(now, hour=hour, minute=minute)
        name = slot_name(slot)
        due = now - slot <= timedelta(hours=self.settings.daily_catch_up_hours)
        if due and not await self.runs.slot_done(name):
            run = await self.runs.run_scheduled(name)
            if run is not None:
                log.info("daily comparison %s finished: %s", name, run.status)
            if not await self.runs.slot_done(name):
                # Another replica holds the lock, or the run failed: look again shortly.
                return self.settings.daily_retry_interval_s
        wait = (next_daily_slot(now, hour=hour, minute=minute) - now).total_seconds()
        return max(1.0, min(wait, MAX_SLEEP_S))
