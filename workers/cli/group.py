"""The ``aep-activator`` click group: ``--version``, ``--help``, and the commands of each area.

The command modules import only ``common``; this module imports them, so the package has no cycle
(``tests/unit/test_cli_layout.py`` pins it). Loading it reads no settings and imports neither the
producer nor ``devstack``: each command imports what it needs when it runs.
"""

from __future__ import annotations

import click

from aep_activator.workers.cli import dev, operating, producing


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="aep-activator")
def main() -> None:
    """Adobe Experience Platform ad-hoc activation on Celery + Redis.

    Runs the tutorial's chain: segment job → poll → export job → poll → ad-hoc activation → poll,
    exactly once per step, within AEP's daily quotas.
    """


for _command in (*producing.COMMANDS, *operating.COMMANDS, *dev.COMMANDS):
    main.add_command(_command)
