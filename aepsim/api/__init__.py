"""The framework-free dispatch: ``Request`` → faults → gateway → action → ``Outcome``, journaled.

    ctx = SimContext(config, clock)
    dispatcher = make_dispatcher(ctx)
    outcome = dispatcher(Request("GET", "/data/core/ups/segment/jobs", headers=Headers({...})))

Adapters in ``aepsim.http`` serve a dispatcher over Tornado or as a ``requests`` transport.
"""

from aep_activator.aepsim.api import admin, routes
from aep_activator.aepsim.api.context import SimContext
from aep_activator.aepsim.api.dispatch import Admission, Dispatcher, Headers, Outcome, Reply, Request


def make_dispatcher(ctx: SimContext) -> Dispatcher:
    """A dispatcher over every AEP, IMS and ``/simulator/*`` route of ``ctx``."""
    return Dispatcher(ctx, [*routes.ROUTES, *admin.ROUTES])


__all__ = ["Admission", "Dispatcher", "Headers", "Outcome", "Reply", "Request", "SimContext", "make_dispatcher"]
