"""Worker entry point of the baseline: ``celery -A tests.benchkit.noop_app worker -Q <queue>``.

Settings come from the environment the bench passes (the same one our workers get).
"""

from aep_activator.config.settings import get_settings
from tests.benchkit.noop import create_noop_app

app = create_noop_app(get_settings())
