"""The AEP and IMS paths this system calls: one list for the client, the simulator and the tests.

Base paths from aep-api.md §1.2. ``*_ONE`` are route templates with ``{id}``, the form the simulator's
journal and routes use; the client formats them with a quoted id.
"""

from __future__ import annotations

IMS_TOKEN = "/ims/token/v3"

UPS = "/data/core/ups"
SEGMENT_JOBS = f"{UPS}/segment/jobs"
SEGMENT_JOB = f"{SEGMENT_JOBS}/{{id}}"
EXPORT_JOBS = f"{UPS}/export/jobs"
EXPORT_JOB = f"{EXPORT_JOBS}/{{id}}"

ADHOC_RUN = "/data/core/activation/disflowprovider/adhocrun"

FLOW_SERVICE = "/data/foundation/flowservice"
FLOW_RUNS = f"{FLOW_SERVICE}/runs"
FLOW_RUN = f"{FLOW_RUNS}/{{id}}"
FLOWS = f"{FLOW_SERVICE}/flows"
FLOW = f"{FLOWS}/{{id}}"

SANDBOX_MANAGEMENT = "/data/foundation/sandbox-management"

POSTS = (SEGMENT_JOBS, EXPORT_JOBS, ADHOC_RUN)
"""The three POSTs that create something at AEP (and may spend a quota): never re-sent blindly."""

ROUTES = (IMS_TOKEN, SEGMENT_JOBS, SEGMENT_JOB, EXPORT_JOBS, EXPORT_JOB, ADHOC_RUN, FLOW_RUNS, FLOW_RUN, FLOWS, FLOW,
          SANDBOX_MANAGEMENT)  # fmt: skip
"""Every route template this system calls: the label values of the request metrics (never an id)."""


def route_of(path: str) -> str:
    """The route template a request path matches (``/…/segment/jobs/abc`` -> ``…/segment/jobs/{id}``),
    or ``other``: a metric label never carries an id."""
    path = path.split("?", 1)[0].rstrip("/")
    for template in ROUTES:
        head, sep, _ = template.partition("{id}")
        if not sep and path == template:
            return template
        if sep and path.startswith(head) and "/" not in path[len(head) :] and len(path) > len(head):
            return template
    return "other"
