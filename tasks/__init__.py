"""Celery tasks (thin) and the producer API.

from tasks import start_activation, ActivationRequest
"""

from aep.request import ActivationRequest
from tasks.producer import InvalidRequest, cancel_run, get_run, resume_run, start_activation

__all__ = ["ActivationRequest", "InvalidRequest", "cancel_run", "get_run", "resume_run", "start_activation"]
