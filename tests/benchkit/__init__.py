"""Helpers for ``python -m tests.bench``: a bare Celery app, a bench fixture, process and Redis probes.

Nothing here is imported by the project's packages or collected by pytest (no ``test_*`` modules).
"""
