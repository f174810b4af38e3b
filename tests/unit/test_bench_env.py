"""The bench measures the shipped configuration: every setting the test stack changes, it changes back."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from aep_activator.config.settings import Settings
from aep_activator.devstack.stack import Stack
from tests.benchkit import polls

# Where a stack is, not how it behaves: the bench's stack names its own.
WHERE = {"redis_url", "aep_key_prefix", "aep_queue", "aep_base_url", "aep_ims_url", "aep_client_id",
         "aep_client_secret", "aep_org_id", "aep_sandbox_name"}  # fmt: skip


def stack_env() -> dict[str, str]:
    client = SimpleNamespace(clientId="c", clientSecret="s")
    fixture = SimpleNamespace(clients=[client], orgId="o@AdobeOrg")
    stack: Any = SimpleNamespace(simulator=SimpleNamespace(state=SimpleNamespace(fixture=fixture)),
                                 redis_url="redis://127.0.0.1:6379/15", prefix="p:", queue="q-p", sim_url="http://x",
                                 env_overrides={})  # fmt: skip
    return Stack.env(stack)


def test_every_setting_the_test_stack_changes_the_bench_runs_as_shipped_or_scaled() -> None:
    bench = polls.env(speed=10.0)
    changed = {k.lower() for k in stack_env()} - WHERE
    assert changed <= set(Settings.model_fields), changed - set(Settings.model_fields)
    assert not {k for k in changed if k.upper() not in bench}, "the bench would run the test stack's value"
    for name in polls.MACHINERY:
        assert float(bench[name.upper()]) == Settings.model_fields[name].default, name
