"""Ed25519 signing (RFC 8032 5.1.6) and usign/fwtool files, for the tests: keys the
tests make, images they sign.  Not shipped: the gateway only verifies."""

import base64
import os
import hashlib
import zlib

from cubegw.usign import BASE, FWIMAGE_MAGIC, L, TRAILER, _mul, encode_point


def keypair(seed):
    """(secret scalar and prefix, 32-byte public key) from a 32-byte seed."""
    h = hashlib.sha512(seed).digest()
    a = int.from_bytes(h[:32], "little")
    a &= (1 << 254) - 8
    a |= 1 << 254
    return (a, h[32:]), encode_point(_mul(a, BASE))


def sign(secret, public, message):
    a, prefix = secret
    r = int.from_bytes(hashlib.sha512(prefix + message).digest(), "little") % L
    big_r = encode_point(_mul(r, BASE))
    k = int.from_bytes(hashlib.sha512(big_r + public + message).digest(), "little") % L
    return big_r + ((r + k * a) % L).to_bytes(32, "little")


def public_key_file(number, public):
    return ("untrusted comment: test key\n" +
            base64.b64encode(b"Ed" + number + public).decode() + "\n").encode()


def signature_file(number, signature):
    return ("untrusted comment: signed by test key\n" +
            base64.b64encode(b"Ed" + number + signature).decode() + "\n").encode()


def append_signature(image, sig_text):
    """``image`` with fwtool's signature chunk appended (as ``fwtool -S``)."""
    crc = zlib.crc32(sig_text) ^ 0xFFFFFFFF
    return image + sig_text + TRAILER.pack(FWIMAGE_MAGIC, crc, 0,
                                          len(sig_text) + TRAILER.size)


class TestKey:
    """A usign key made by a test: ``sign_image(data)``, ``write_public(dir)``."""

    def __init__(self, seed, number=b"\x01" * 8):
        self.number = number
        self.secret, self.public = keypair(seed)

    def sign_image(self, image):
        return append_signature(image, signature_file(
            self.number, sign(self.secret, self.public, image)))

    def write_public(self, directory):
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, self.number.hex()), "wb") as f:
            f.write(public_key_file(self.number, self.public))

