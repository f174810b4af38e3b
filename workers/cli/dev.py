"""Development commands: ``simulator`` (the offline AEP) and ``demo`` (one activation on an embedded stack).

Only ``demo`` imports ``devstack``, and only when it runs: the embedded Redis and the local Stack are
dev infrastructure, never loaded by the commands production runs.
"""

from __future__ import annotations

import click

from aep_activator.workers.cli.common import fail


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Bind address (loopback by default).")
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--speed", default=1.0, show_default=True, type=float, help="Simulated time runs N times faster.")
@click.option("--fault-rate", default=0.0, show_default=True, type=click.FloatRange(0, 1), help="Share of 5xx/429.")
@click.option("--seed", type=int, default=None)
@click.option("--fixture", type=click.Path(exists=True, dir_okay=False), default=None)
def simulator(host: str, port: int, speed: float, fault_rate: float, seed: int | None, fixture: str | None) -> None:
    """Run the offline AEP simulator (IMS, segment/export jobs, ad-hoc runs, flow runs)."""
    from aep_activator.aepsim import run_simulator_cli

    if speed <= 0:
        fail("--speed must be > 0")
    run_simulator_cli(host=host, port=port, speed=speed, fault_rate=fault_rate, seed=seed, fixture=fixture)


@click.command()
@click.option("--keep-running", is_flag=True, help="Leave the stack up for exploring Flower (Ctrl-C ends it).")
@click.option("--speed", default=300.0, show_default=True, help="Simulator speed factor.")
@click.option("--request", "request_file", default=None, help="Activation request JSON (default: the example).")
def demo(keep_running: bool, speed: float, request_file: str | None) -> None:
    """One full activation against the embedded simulator: Redis, simulator, worker, Flower, progress."""
    from aep_activator.devstack.demo import run_demo

    raise SystemExit(run_demo(keep_running=keep_running, speed=speed, request_file=request_file))


COMMANDS = (simulator, demo)
