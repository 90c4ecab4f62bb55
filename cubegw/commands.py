"""The commands the registration machine returns for its transport to carry out; pure.

Each is an immutable value: ``cubegw.access`` maps its type to one action (send a
datagram, arm the machine's one timer, store the operation platform, ...).  Kept apart
from ``cubegw.registration`` so the machine module stays within the size limit.
"""

from cubegw import wire
from cubegw.record import Record, field


class Send(Record):
    """Send ``message`` to ``host:port`` (``target`` names the platform, for logs)."""
    target: str
    host: str
    port: int
    message: wire.Message


class SetTimer(Record):
    """Arm the machine's one timer (replacing any armed one)."""
    delay: float


class StoreOperationPlatform(Record):
    """Persist the operation platform so a reboot skips distribution."""
    host: str
    port: int


class ResetAppData(Record):
    """Perform the APP-side factory reset (it also clears the stored UserID)."""


class ConnectPlugin(Record):
    """Connect to the plugin center at ``host:port`` (a valid RequestPlug-in)."""
    host: str
    port: int


class AnswerTrigger(Record):
    """Reply ``{"Result": result}`` to a reverse trigger's source, with ``"DevRND"`` when
    ``dev_rnd`` is set (an accepted trigger: the platform's next Key uses it)."""
    result: int
    address: tuple
    dev_rnd: str = None

    def message(self):
        return {"Result": self.result, **({"DevRND": self.dev_rnd} if self.dev_rnd else {})}


class Note(Record):
    """Something worth an operator's log line (``level`` is info, warn or error)."""
    level: str
    event: str
    fields: dict = field(default_factory=dict)
