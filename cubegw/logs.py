"""Routine events cost nothing unless asked for.

A heartbeat every minute and a capability call per app tap would fill a router's
small log ring with lines nobody reads, and formatting them is most of the CPU a
heartbeat or a call costs.  So the routine lines (an answered Hb, a call that
succeeded) go out at debug through this ``Logger``, and its ``debug`` returns at
once unless ``log_level: debug`` is configured.  Every other level is Twisted's own.
"""

from twisted.logger import Logger as _TwistedLogger, LogLevel

LEVELS = ("info", "debug")
_debug = False


def set_level(level):
    """``"debug"``: routine lines are logged; ``"info"`` (the default): they are not."""
    global _debug
    if level not in LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LEVELS)}, got {level!r}")
    _debug = level == "debug"


def debug_enabled():
    return _debug


class Logger(_TwistedLogger):
    """A ``twisted.logger.Logger`` whose debug events are dropped before they are built."""

    def debug(self, format=None, **kwargs):
        if _debug:
            self.emit(LogLevel.debug, format, **kwargs)
