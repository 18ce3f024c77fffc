"""Time windows (填报时间) per project × period × phase, narrowed per region, extended per school.

Which window governs an org for a phase: an extension open now on the org's path (延期/补录 only
ever widens), else the most specific window set on its path (a region's beats the project's),
else the default of seed 000 article 17 (the period's start to its deadline, 24:00 Asia/Shanghai).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from zizhu_common.errors import FailedPrecondition

from aid_service.domain.enums import Phase
from aid_service.domain.periods import AidPeriod, Period, end_of_day, local_text, start_of_day

DEFAULT_WINDOW_ID = "default"


@dataclass
class Window:
    """One window, or the default one (is_default) when none was set."""

    window_id: str
    project_code: str
    period: AidPeriod
    phase: Phase
    org_code: str
    org_path: str
    starts_at: datetime
    ends_at: datetime
    extension: bool = False
    reason: str = ""
    set_by: str = ""
    set_at: datetime | None = None
    is_default: bool = False

    def open_at(self, now: datetime) -> bool:
        """True when now lies in [starts_at, ends_at)."""
        return self.starts_at <= now < self.ends_at

    def text(self) -> str:
        """ "2024-09-01 00:00 至 2025-01-31 24:00" in Asia/Shanghai."""
        return f"{local_text(self.starts_at)} 至 {local_text(self.ends_at)}"


@dataclass(frozen=True)
class Governing:
    """The window governing one phase for one org, and whether it is open now."""

    phase: Phase
    window: Window | None
    open_now: bool


def default_window(project_code: str, period: Period, phase: Phase, root_path: str) -> Window:
    """Article 17: from the period's first day to its deadline (24:00)."""
    return Window(
        window_id=DEFAULT_WINDOW_ID,
        project_code=project_code,
        period=period.period,
        phase=phase,
        org_code="",
        org_path=root_path,
        starts_at=start_of_day(period.starts_on),
        ends_at=end_of_day(period.deadline_on),
        is_default=True,
    )


def governing_window(
    windows: Iterable[Window],
    *,
    org_path: str,
    phase: Phase,
    now: datetime,
    default: Window | None,
) -> Window | None:
    """The window that governs org_path for phase (see the module docstring)."""
    applicable = [w for w in windows if w.phase is phase and org_path.startswith(w.org_path)]
    open_extensions = [w for w in applicable if w.extension and w.open_at(now)]
    if open_extensions:
        return max(open_extensions, key=lambda w: (len(w.org_path), w.ends_at))
    regular = [w for w in applicable if not w.extension]
    if regular:
        return max(regular, key=lambda w: (len(w.org_path), w.set_at or w.starts_at))
    return default


def govern(
    windows: list[Window],
    *,
    org_path: str,
    now: datetime,
    period: Period | None,
    project_code: str,
    root_path: str = "/",
) -> list[Governing]:
    """The governing window of each phase (entry, school audit, authority audit)."""
    out = []
    for phase in Phase:
        default = (
            default_window(project_code, period, phase, root_path)
            if period is not None and period.is_open
            else None
        )
        w = (
            governing_window(windows, org_path=org_path, phase=phase, now=now, default=default)
            if period is not None and period.is_open
            else None
        )
        out.append(Governing(phase, w, bool(w and w.open_at(now))))
    return out


def window_closed(phase: Phase, window: Window | None, *, now: datetime) -> FailedPrecondition:
    """The refusal of a write outside its window, naming the window."""
    if window is None:
        return FailedPrecondition(
            f"{phase.label}未开放：资助周期未开启或已关闭",
            code="WINDOW_CLOSED",
            field="period",
            details={"phase": phase.name.lower(), "window_id": "", "starts_at": "", "ends_at": ""},
        )
    when = "尚未开始" if now < window.starts_at else "已结束"
    scope = (
        "（延期）"
        if window.extension
        else ("（默认：第十七条截止时间）" if window.is_default else "")
    )
    return FailedPrecondition(
        f"不在{phase.label}时间内：{phase.label}时间为{window.text()}{scope}（北京时间），{when}",
        code="WINDOW_CLOSED",
        field="period",
        details={
            "phase": phase.name.lower(),
            "window_id": window.window_id,
            "project_code": window.project_code,
            "org_code": window.org_code,
            "starts_at": window.starts_at.isoformat(),
            "ends_at": window.ends_at.isoformat(),
            "window": window.text(),
        },
    )
