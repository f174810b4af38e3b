"""The poll settings every stage runs with: ``config/settings.py``'s defaults, scaled by the simulator speed.

Nothing here types a poll value in: each one is read from ``Settings.model_fields`` and divided by the
speed (a simulator at ``speed`` s compresses AEP's time ``speed``-fold, so the schedule stays the
production one in simulated time). Factors and the jitter are ratios and stay as shipped. The watchdog
tick (``DELAY_PUMP_INTERVAL_S``) is scaled too, then held inside what the setting accepts and above a
floor that keeps an idle worker from spinning; the report shows every value and whether it was held.
The overhead stage, where no run ever waits, keeps the shipped tick (``watchdog_speed=1``): scaled by
its infinite speed the tick would be a busy loop that no run needs.
"""

from __future__ import annotations

from dataclasses import dataclass

from aep_activator.config.settings import Settings

PUMP_FLOOR_S = 0.02
PUMP_CEILING_S = 60.0  # Settings: delay_pump_interval_s le=60


def shipped(name: str) -> float:
    """A numeric setting's default in `config/settings.py`, as shipped."""
    value = Settings.model_fields[name].default
    assert isinstance(value, int | float), name
    return float(value)


# Seconds that the speed scales: every poll interval, cap and deadline, the error retries, the watchdog.
SCALED = tuple(
    name
    for name in Settings.model_fields
    if (name.startswith("poll_") and name.endswith("_s")) or name in ("retry_initial_s", "retry_cap_s")
)
RATIOS = ("poll_factor", "poll_jitter")
AS_SHIPPED = ("poll_adaptive", "poll_summary_size", "poll_summary_min")  # switches and counts: never scaled
# What the test stack shortens (devstack/stack.py) so that tests recover fast, run here as shipped: they
# time our machinery and the network (a lost answer's settle, the watchdog's grace, Redis redelivery, a
# step's time limit, the HTTP timeouts), not AEP's jobs, so the simulator's speed does not scale them.
# The stack also keeps Celery results 10 minutes, for a tidy shared Redis: the bench reads every bare
# chain's, some of them longer after they were stored than that (the bench deletes them itself).
MACHINERY = ("aep_connect_timeout_s", "aep_read_timeout_s", "look_settle_s", "watchdog_grace_s",
             "visibility_timeout_s", "task_time_limit_s", "result_expires_s")  # fmt: skip


@dataclass(frozen=True)
class PollSetting:
    name: str  # field name (the environment variable in upper case)
    default: float  # as shipped, real-AEP seconds (or a ratio)
    value: float  # what the bench's workers run with
    held: bool = False  # the scaled value was held at a floor or ceiling
    text: str = ""  # the environment value, when not a number of seconds


def scaled(speed: float, watchdog_speed: float | None = None) -> list[PollSetting]:
    """Every poll setting at ``speed``; the watchdog tick at ``watchdog_speed`` (default: ``speed``)."""
    out = [PollSetting(name, shipped(name), shipped(name) / speed) for name in SCALED]
    out += [PollSetting(name, shipped(name), shipped(name)) for name in RATIOS]
    pump = shipped("delay_pump_interval_s")
    want = pump / (watchdog_speed or speed)
    value = min(PUMP_CEILING_S, max(PUMP_FLOOR_S, want))
    out.append(PollSetting("delay_pump_interval_s", pump, value, held=value != want))
    for name in AS_SHIPPED:
        raw = Settings.model_fields[name].default
        out.append(PollSetting(name, float(raw), float(raw), text=str(raw)))
    return out


def machinery() -> dict[str, float]:
    """:data:`MACHINERY` as shipped: ``name -> default``."""
    return {name: shipped(name) for name in MACHINERY}


def env(speed: float, watchdog_speed: float | None = None) -> dict[str, str]:
    """The environment of a worker whose polls are the shipped ones at simulator ``speed`` (and whose
    :data:`MACHINERY` settings are the shipped ones)."""
    out = {s.name.upper(): s.text or repr(s.value) for s in scaled(speed, watchdog_speed)}
    return out | {name.upper(): repr(value) for name, value in machinery().items()}
