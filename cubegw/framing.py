"""The Int32 length-prefixed frames of the TCP links (protocol.md 3): ``Int32Receiver``.

Twisted's ``Int32StringReceiver`` as cubegw uses it — a 4-byte big-endian length,
``MAX_LENGTH`` checked before any byte of the frame is kept, ``lengthLimitExceeded``,
no frame handed over while ``paused`` — without twisted.protocols.basic, whose line,
netstring and file-sending classes cost a running gateway ~0.14 MiB.
"""

import struct

from twisted.internet.protocol import Protocol

_LENGTH = struct.Struct("!I")


class Int32Receiver(Protocol):
    """Calls ``stringReceived(frame)`` for each whole frame received."""

    MAX_LENGTH = 99999
    paused = False
    _unprocessed = b""

    def dataReceived(self, data):
        buffer = self._unprocessed + data
        self._unprocessed = buffer
        offset = 0
        while len(buffer) >= offset + 4 and not self.paused:
            (length,) = _LENGTH.unpack_from(buffer, offset)
            if length > self.MAX_LENGTH:
                self._unprocessed = buffer[offset:]
                self.lengthLimitExceeded(length)
                return
            end = offset + 4 + length
            if len(buffer) < end:
                break
            frame = buffer[offset + 4:end]
            offset = end
            self.stringReceived(frame)
        self._unprocessed = buffer[offset:]

    def stringReceived(self, frame):
        """One whole frame: what each link does with it (``LanProtocol``,
        ``PluginProtocol``); a subclass that does not say is a programming error."""
        raise NotImplementedError(f"{type(self).__name__} handles no frame")

    def lengthLimitExceeded(self, length):
        """A frame announced over ``MAX_LENGTH`` bytes: the connection is closed."""
        self.transport.loseConnection()

    def sendString(self, frame):
        """Send ``frame`` with its length prefix (``struct.error`` past 4 GiB - 1)."""
        self.transport.write(_LENGTH.pack(len(frame)) + frame)
