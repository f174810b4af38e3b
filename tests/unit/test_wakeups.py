"""A wake-up asks for no Celery result (tasks/wakeups.py): a step stores none, so a producer outside a
worker must not SUBSCRIBE to a result channel for each wake-up it sends (Celery's Redis backend does
that for every task sent without ignore_result)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from celery import Celery

from aep_activator.tasks.wakeups import publish


def recording_app() -> tuple[Celery, list[str], list[dict[str, Any]]]:
    app = Celery("wakeups-test", broker="memory://", backend="cache+memory://", set_as_current=False)
    calls: list[str] = []
    sent: list[dict[str, Any]] = []
    app.backend.on_task_call = lambda producer, task_id: calls.append(task_id)
    send_task_message = app.amqp.send_task_message

    def recording_send(producer: Any, name: str, message: Any, **options: Any) -> Any:
        sent.append(message.headers)
        return send_task_message(producer, name, message, **options)

    app.amqp.send_task_message = recording_send
    return app, calls, sent


def test_a_wake_up_makes_the_result_backend_watch_nothing_and_says_so_in_its_headers() -> None:
    app, calls, sent = recording_app()
    rt = SimpleNamespace(settings=SimpleNamespace(aep_queue="q-wakeups"))
    assert publish(app, rt, "run-1", "poll_segment_job", 3, 0)  # type: ignore[arg-type]
    assert calls == []
    assert sent[0]["id"] == "run-1.poll_segment_job.0"
    assert sent[0]["ignore_result"] is True
    assert sent[0]["argsrepr"] == "('run-1', 3)"


def test_a_task_sent_without_ignore_result_is_watched_by_the_backend() -> None:
    # The control: the recording sees a subscription when one is made.
    app, calls, _ = recording_app()
    app.send_task("activation.start", task_id="t-1", queue="q-wakeups")
    assert calls == ["t-1"]
