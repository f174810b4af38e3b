"""Process commands of the CLI: worker and demo (ops commands register here too)."""

from __future__ import annotations

import click

from aep_activator.workers.cli import err_console, fail, settings_or_exit, use_settings


def register(main: click.Group) -> None:
    main.add_command(worker)
    main.add_command(demo)
    try:
        from aep_activator.workers.cli import ops as ops_commands
    except ImportError:  # pragma: no cover - ops commands not installed
        return
    ops_commands.register(main)


def run_self_checks(role: str, *, strict: bool = True) -> None:
    """Warn about, or refuse, configurations that break the quota or exactly-once guarantees."""
    from aep_activator.tasks.runtime import runtime
    from aep_activator.workers.checks import check_redis_policy, check_timeouts, check_utc

    s = settings_or_exit()
    use_settings(s)
    try:
        runtime().redis.ping()
    except Exception as exc:
        fail(f"REDIS_URL: cannot reach Redis ({type(exc).__name__}: {exc})", code=3)
    problems = check_timeouts(s) + check_redis_policy(runtime().redis) + check_utc()
    for p in problems:
        level = "[red]refusing:[/red]" if p.fatal and strict else "[yellow]warning:[/yellow]"
        err_console.print(f"{role} self-check {level} {p.message}")
    if strict and any(p.fatal for p in problems):
        fail(f"{role} start-up checks failed (pass --no-strict-checks to start anyway)", code=3)


@click.command(context_settings={"ignore_unknown_options": True})
@click.option("--concurrency", "-c", type=int, default=None, help="Worker processes (default: cores).")
@click.option("--loglevel", "-l", default="info", show_default=True)
@click.option("--strict-checks/--no-strict-checks", default=True, show_default=True)
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
def worker(concurrency: int | None, loglevel: str, strict_checks: bool, celery_args: tuple[str, ...]) -> None:
    """Run a Celery worker for the activation chain (after start-up self-checks).

    Extra arguments go to `celery worker` as they are, e.g. `-- --hostname w1@%h`.
    """
    s = settings_or_exit()
    if problems := s.aep_problems():
        fail("invalid configuration:\n  " + "\n  ".join(problems))
    run_self_checks("worker", strict=strict_checks)
    from aep_activator.workers import app

    argv = ["worker", f"--loglevel={loglevel}", "-Q", s.aep_queue]
    if concurrency:
        argv.append(f"--concurrency={concurrency}")
    app.worker_main([*argv, *celery_args])


@click.command()
@click.option("--keep-running", is_flag=True, help="Leave the stack up for exploring Flower (Ctrl-C ends it).")
@click.option("--speed", default=300.0, show_default=True, help="Simulator speed factor.")
@click.option("--request", "request_file", default=None, help="Activation request JSON (default: the example).")
def demo(keep_running: bool, speed: float, request_file: str | None) -> None:
    """One full activation against the embedded simulator: Redis, simulator, worker, Flower, progress."""
    from aep_activator.devstack.demo import run_demo

    raise SystemExit(run_demo(keep_running=keep_running, speed=speed, request_file=request_file))
