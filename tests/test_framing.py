"""cubegw.framing.Int32Receiver: the TCP links' Int32 frames, as Twisted's receiver."""

import random
import struct

from twisted.internet.testing import StringTransport
from twisted.protocols.basic import Int32StringReceiver
from twisted.trial.unittest import SynchronousTestCase

from cubegw.framing import Int32Receiver


def recording(base, limit=100):
    class Recorder(base):
        MAX_LENGTH = limit

        def __init__(self):
            self.frames, self.over = [], []

        def stringReceived(self, frame):
            self.frames.append(frame)

        def lengthLimitExceeded(self, length):
            self.over.append(length)
    proto = Recorder()
    proto.makeConnection(StringTransport())
    return proto


def frame(body):
    return struct.pack("!I", len(body)) + body


class Int32ReceiverTests(SynchronousTestCase):
    def test_frames_split_and_joined(self):
        """Frames arrive whole whether split byte by byte or several in one chunk."""
        data = frame(b"one") + frame(b"") + frame(b"three")
        proto = recording(Int32Receiver)
        for i in range(len(data)):
            proto.dataReceived(data[i:i + 1])
        proto.dataReceived(data)
        self.assertEqual(proto.frames, [b"one", b"", b"three"] * 2)

    def test_over_limit_before_the_body(self):
        """A length over MAX_LENGTH is reported as soon as the prefix is in, and
        nothing after it is handed over."""
        proto = recording(Int32Receiver, limit=10)
        proto.dataReceived(frame(b"ok") + struct.pack("!I", 11) + frame(b"later"))
        self.assertEqual((proto.frames, proto.over), ([b"ok"], [11]))

    def test_default_limit_closes(self):
        """Without an override, an over-limit length closes the connection."""
        class Plain(Int32Receiver):
            MAX_LENGTH = 4
        proto = Plain()
        proto.makeConnection(StringTransport())
        proto.dataReceived(struct.pack("!I", 5))
        self.assertTrue(proto.transport.disconnecting)

    def test_paused_holds_frames(self):
        """While paused no frame is handed over; they come with the next data."""
        proto = recording(Int32Receiver)
        proto.paused = True
        proto.dataReceived(frame(b"a") + frame(b"b"))
        self.assertEqual(proto.frames, [])
        proto.paused = False
        proto.dataReceived(b"")
        self.assertEqual(proto.frames, [b"a", b"b"])

    def test_send(self):
        """sendString writes the 4-byte big-endian length, then the frame."""
        proto = recording(Int32Receiver)
        proto.sendString(b"hello")
        self.assertEqual(proto.transport.value(), b"\x00\x00\x00\x05hello")

    def test_same_as_twisted(self):
        """On random streams cut at random places (bodies up to twice the limit), the
        frames and limit reports are Twisted's Int32StringReceiver's."""
        rng = random.Random(15)
        for _ in range(300):
            stream = b"".join(frame(rng.randbytes(rng.randrange(0, 200)))
                              for _ in range(rng.randrange(1, 6)))
            ours, theirs = recording(Int32Receiver), recording(Int32StringReceiver)
            i = 0
            while i < len(stream):
                n = rng.randrange(1, 80)
                for proto in (ours, theirs):
                    if not proto.over:
                        proto.dataReceived(stream[i:i + n])
                i += n
            self.assertEqual((ours.frames, ours.over), (theirs.frames, theirs.over))
