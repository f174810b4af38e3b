"""Settings and schedule-file loading. Imports no Celery."""


from aep_activator import canonical

canonical(__name__)

from aep_activator.config.settings import Settings, SettingsError, get_settings, load_settings

__all__ = ["Settings", "SettingsError", "get_settings", "load_settings"]
