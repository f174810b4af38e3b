"""The ``aep-activator`` click group: ``--version``, ``--help``, and the commands of each area.

The command modules import only ``common``; this module imports them, so the package has no cycle
(``tests/unit/test_cli_layout.py`` pins it). Loading it reads no settings and imports neither the
producer nor ``devstack``: each command imports what it needs when it runs.
"""

from __future__ import annotations

from typing import Any

import click

from aep_activator.workers.cli import dev, inspecting, operating, producing, watching


class Group(click.Group):
    """The group, with one safety net: a Redis error no command caught is one line and exit 3, not a traceback.

    Commands ping Redis before they use it (``common.ping_redis``); this catches a Redis that goes away
    between that ping and a later call.
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as exc:
            import redis.exceptions

            if isinstance(exc, redis.exceptions.RedisError):
                # The same line as common.ping_redis's (this module imports only the command modules).
                click.echo(f"error: REDIS_URL: cannot reach Redis ({type(exc).__name__}: {exc})", err=True)
                ctx.exit(3)
            raise


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="aep-activator")
def main() -> None:
    """Adobe Experience Platform ad-hoc activation on Celery + Redis.

    Runs the tutorial's chain: segment job → poll → export job → poll → ad-hoc activation → poll,
    exactly once per step, within AEP's daily quotas.
    """


for _command in (*producing.COMMANDS, *watching.COMMANDS, *operating.COMMANDS, *inspecting.COMMANDS, *dev.COMMANDS):
    main.add_command(_command)
