"""``python -m aep_activator.workers`` (``python -m workers`` in the repository root) is ``aep-activator``."""

from aep_activator.workers.cli import main

main()
