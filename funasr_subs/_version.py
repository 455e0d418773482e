"""The version, in one place: pyproject.toml reads it from here (no importlib.metadata lookup at run time)."""

__version__ = "0.1.0"
