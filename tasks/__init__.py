"""Celery tasks (thin) and the producer API.

from aep_activator.tasks import start_activation, ActivationRequest
"""


from aep_activator import canonical

canonical(__name__)

from aep_activator.aep.pipeline.request import ActivationRequest
from aep_activator.tasks.producer import InvalidRequest, cancel_run, get_run, resume_run, start_activation

__all__ = ["ActivationRequest", "InvalidRequest", "cancel_run", "get_run", "resume_run", "start_activation"]
