# doorlink's edge agent. The version lives here, once: the package metadata
# reads it (pyproject.toml) and the agent reports it (status, boot line).
__version__ = "0.2.0"
