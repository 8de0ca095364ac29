"""The 24/7 self-service IVR: admin YAML (schema and checker), office hours, the call state machine."""

from ivr.config import IvrConfig, load_config
from ivr.engine import Session
from ivr.hours import Calendar, CalendarSpec
from ivr.source import ConfigError, ConfigErrors, Location

__all__ = [
    "Calendar",
    "CalendarSpec",
    "ConfigError",
    "ConfigErrors",
    "IvrConfig",
    "Location",
    "Session",
    "load_config",
]
