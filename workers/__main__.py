"""``python -m workers`` is the same as the ``aep-activator`` command."""

from workers.cli import main

main()
