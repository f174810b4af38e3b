"""Settings and schedule-file loading. Imports no Celery."""

from config.settings import Settings, SettingsError, get_settings, load_settings

__all__ = ["Settings", "SettingsError", "get_settings", "load_settings"]
