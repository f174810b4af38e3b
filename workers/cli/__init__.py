"""``aep-activator``: the command line for producers and ops (``python -m aep_activator.workers`` too).

Laid out as rq's ``cli/`` is: ``group`` holds the click group and registers the commands of
``producing`` (run, status, runs, cancel, resume, quota), ``operating`` (worker, beat, flower,
schedules, config) and ``dev`` (simulator, demo); those import only ``common`` (consoles, ``fail``,
the settings, time formatting), never each other. Bad input exits with status 2 and a message naming
the field; nothing is enqueued.
"""

from aep_activator.workers.cli.group import main

__all__ = ["main"]
