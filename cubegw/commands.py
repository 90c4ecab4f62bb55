"""The commands the registration machine returns for its transport to carry out; pure.

Each is an immutable value: ``cubegw.access`` maps its type to one action (send a
datagram, arm the machine's one timer, store the operation platform, ...).  Kept apart
from ``cubegw.registration`` so the machine module stays within the size limit.
"""

from dataclasses import dataclass, field

from cubegw import wire


@dataclass(frozen=True)
class Send:
    """Send ``message`` to ``host:port`` (``target`` names the platform, for logs)."""
    target: str
    host: str
    port: int
    message: wire.Message


@dataclass(frozen=True)
class SetTimer:
    """Arm the machine's one timer (replacing any armed one)."""
    delay: float


@dataclass(frozen=True)
class StoreOperationPlatform:
    """Persist the operation platform so a reboot skips distribution."""
    host: str
    port: int


@dataclass(frozen=True)
class ResetAppData:
    """Perform the APP-side factory reset (it also clears the stored UserID)."""


@dataclass(frozen=True)
class ConnectPlugin:
    """Connect to the plugin center at ``host:port`` (a valid RequestPlug-in)."""
    host: str
    port: int


@dataclass(frozen=True)
class AnswerTrigger:
    """Reply ``{"Result": result}`` to a reverse trigger's source, with ``"DevRND"`` when
    ``dev_rnd`` is set (an accepted trigger: the platform's next Key uses it)."""
    result: int
    address: tuple
    dev_rnd: str = None

    def message(self):
        return {"Result": self.result, **({"DevRND": self.dev_rnd} if self.dev_rnd else {})}


@dataclass(frozen=True)
class Note:
    """Something worth an operator's log line (``level`` is info, warn or error)."""
    level: str
    event: str
    fields: dict = field(default_factory=dict)
