# Exceptions shared by the core and the hal adapters.


class ConfigError(Exception):
    """A board/site file is missing a field or holds a wrong value."""

    def __init__(self, path, field, problem):
        self.path = path
        self.field = field
        self.problem = problem
        super().__init__("%s: field '%s' %s" % (path, field, problem))


class LinkClosed(Exception):
    """The network link to the cloud is gone (closed, reset, timed out)."""


class CommandError(Exception):
    """A cloud command could not be run; the message goes back to the cloud."""
