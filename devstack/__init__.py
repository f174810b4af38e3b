"""devstack"""

from aep_activator import canonical

canonical(__name__)
