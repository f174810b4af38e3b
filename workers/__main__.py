"""``python -m workers`` is the same as the ``aep-activator`` command."""

from aep_activator.workers.cli import main

main()
