"""The job schedule on APScheduler, with its job store in the database.

Jobs (times in ``settings.scheduler_timezone``, New York by default):

======================================  ===================================  ==========================
job                                     when                                 lock key (one run each)
======================================  ===================================  ==========================
``daily_monitoring``                    Mon-Fri 18:30, after the close       the date
``monthly_retraining``                  1st of the month, 06:00              the month
``earnings_season_retraining``          15 Feb / May / Aug / Nov, 07:00      the quarter
(drift retraining)                      from the daily job when drift says   the ISO week
======================================  ===================================  ==========================

The job store is APScheduler's ``SQLAlchemyJobStore`` on the serving database, so the schedule
survives restarts. APScheduler 3 does not coordinate several schedulers sharing one store
(each may fire the same job); every job therefore takes a row lock in ``ops_job_locks``
keyed by its occurrence first (:func:`vfr.opsdb.claim`), and only the first taker
runs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from vfr.config import Settings


@dataclass(frozen=True)
class JobSpec:
    """One scheduled job: id, function reference (``module:function``) and cron fields."""

    id: str
    func: str
    cron: dict[str, Any]
    description: str


SCHEDULE: tuple[JobSpec, ...] = (
    JobSpec("daily_monitoring", "vfr.retraining.jobs:daily_monitoring",
            {"day_of_week": "mon-fri", "hour": 18, "minute": 30},
            "collect outcomes, check drift, retrain when drift says so"),
    JobSpec("monthly_retraining", "vfr.retraining.jobs:monthly_retraining", {"day": 1, "hour": 6, "minute": 0},
            "monthly challenger vs champion"),
    JobSpec("earnings_season_retraining", "vfr.retraining.jobs:earnings_season_retraining",
            {"month": "2,5,8,11", "day": 15, "hour": 7, "minute": 0},
            "after most S&P 500 companies have reported the quarter"),
)

#: Settings never written into the job store (secrets the jobs do not need).
_SECRET_FIELDS = {"jwt_secret", "jwt_public_key"}


def job_settings(settings: Settings) -> dict[str, Any]:
    """The settings a stored job is called with (JSON-safe; secrets left out)."""
    return settings.model_dump(mode="json", exclude=_SECRET_FIELDS)


def build_scheduler(settings: Settings, *, blocking: bool = False, schedule: tuple[JobSpec, ...] = SCHEDULE):
    """An APScheduler scheduler with the VFR jobs in a database job store (not started).

    Parameters
    ----------
    settings : Settings
        Serving database URL (job store) and time zone.
    blocking : bool
        ``BlockingScheduler`` (for ``vfr scheduler run``) instead of ``BackgroundScheduler``.
    schedule : tuple of JobSpec

    Returns
    -------
    apscheduler.schedulers.base.BaseScheduler
        Jobs are added with ``replace_existing=True`` (restarts keep one copy), ``coalesce``
        (missed runs collapse into one) and a one-hour misfire grace time.
    """
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.schedulers.blocking import BlockingScheduler
    from apscheduler.triggers.cron import CronTrigger

    cls = BlockingScheduler if blocking else BackgroundScheduler
    scheduler = cls(jobstores={"default": SQLAlchemyJobStore(url=settings.resolved_serving_db_url)},
                    timezone=settings.scheduler_timezone,
                    job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600})
    for spec in schedule:
        scheduler.add_job(spec.func, CronTrigger(timezone=settings.scheduler_timezone, **spec.cron), id=spec.id,
                          name=spec.description, kwargs={"settings": job_settings(settings)}, replace_existing=True)
    return scheduler


def next_runs(settings: Settings, now: datetime | None = None,
              schedule: tuple[JobSpec, ...] = SCHEDULE) -> list[dict[str, Any]]:
    """Next fire time of each job (ISO, in the scheduler's time zone), computed from the schedule."""
    from zoneinfo import ZoneInfo

    from apscheduler.triggers.cron import CronTrigger

    tz = ZoneInfo(settings.scheduler_timezone)
    if now is None:
        now = datetime.now(tz)
    else:
        now = now.astimezone(tz) if now.tzinfo else now.replace(tzinfo=tz)
    out = []
    for spec in schedule:
        nxt = CronTrigger(timezone=tz, **spec.cron).get_next_fire_time(None, now)
        out.append({"job": spec.id, "description": spec.description, "next_run": nxt.isoformat() if nxt else None})
    return out
