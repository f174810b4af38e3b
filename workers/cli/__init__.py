"""``aep-activator``: the command line for producers and ops (``python -m aep_activator.workers`` too).

Laid out as rq's ``cli/`` is: ``group`` holds the click group and registers the commands of
``producing`` (run, cancel, resume, quota, reconcile), ``watching`` (status, runs), ``operating``
(worker, beat, flower, schedules, api, api-key), ``inspecting`` (config check) and ``dev`` (simulator,
demo); those import only ``common`` (consoles, ``fail``, the Redis ping, the settings, time formatting),
never each other. Every error is one line on stderr naming the variable or the field (exit codes: the
README's *CLI* table); bad input exits 2 and nothing is enqueued.
"""

from aep_activator.workers.cli.group import main

__all__ = ["main"]
