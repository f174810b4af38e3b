"""Chaos scenarios: kill -9, Redis restarts, AEP faults, quota races, shared audiences (``pytest -m chaos``)."""
