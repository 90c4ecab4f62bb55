"""Log levels for the daemons, and routine events that cost nothing unless asked for.

A heartbeat every minute and a capability call per app tap would fill a router's
small log ring with lines nobody reads, and formatting them is most of the CPU a
heartbeat or a call costs.  So the routine lines (an answered Hb, a call that
succeeded) go out at debug through this ``Logger``, and its ``debug`` returns at
once unless ``log_level: debug`` is configured.  ``log_level: warn`` or ``error``
keeps only those and worse: the events below are dropped before they are built.
"""

from twisted.logger import Logger as _TwistedLogger, LogLevel

#: From the least to the most said.
LEVELS = ("error", "warn", "info", "debug")
_LOG_LEVEL = {"error": LogLevel.error, "warn": LogLevel.warn, "info": LogLevel.info,
              "debug": LogLevel.debug}
_debug = False
_minimum = LogLevel.info


def set_level(level):
    """``"debug"``: routine lines are logged too; ``"info"`` (the default): they are
    not; ``"warn"``/``"error"``: only those levels and worse."""
    global _debug, _minimum
    if level not in LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LEVELS)}, got {level!r}")
    _debug = level == "debug"
    _minimum = _LOG_LEVEL[level]


def level():
    """The level set last (its name)."""
    return next(name for name, value in _LOG_LEVEL.items() if value is _minimum)


def debug_enabled():
    return _debug


def enabled(event_level):
    """Whether an event of ``event_level`` (a LogLevel) is logged at the level set."""
    return event_level >= _minimum          # LogLevel constants order by severity


class Logger(_TwistedLogger):
    """A ``twisted.logger.Logger`` whose events below the level set are dropped before
    they are built (debug ones at once)."""

    def debug(self, format=None, **kwargs):
        if _debug:
            self.emit(LogLevel.debug, format, **kwargs)

    def emit(self, level, format=None, **kwargs):
        if enabled(level):
            super().emit(level, format, **kwargs)


class LineBudget:
    """At most ``per_window`` lines of one kind every ``window`` seconds (``clock``
    time): a flood (a LAN host replaying SETs, a burst of registrations) cannot fill the
    log ring or spend the CPU formatting.

    ``take()`` -> (whether this line may be logged, how many were held back since the
    last one logged): the next line logged, or ``held_back()`` at any time (a summary,
    the stop), says how many lines it stands for.
    """

    def __init__(self, clock, per_window=20, window=60.0):
        self.clock = clock
        self.per_window = per_window
        self.window = window
        self._window_start = None
        self._used = 0
        self._held = 0

    def take(self):
        now = self.clock.seconds()
        if self._window_start is None or now - self._window_start >= self.window:
            self._window_start, self._used = now, 0
        if self._used >= self.per_window:
            self._held += 1
            return False, 0
        self._used += 1
        return True, self.held_back()

    def held_back(self):
        """The lines held back since the last one logged (or the last call); reset."""
        held, self._held = self._held, 0
        return held
