"""usign (OpenWrt's Ed25519 signatures) and the fwtool signature trailer of a sysupgrade
image, verified in pure Python; pure (no I/O beyond reading the files it is given).

Why pure Python: the gateway needs one signature check per firmware image, seconds
apart at most; the ``cryptography`` wheel is some MB and not on every OpenWrt target,
and calling the ``usign`` binary would make the check depend on a tool the tests cannot
always build.  Ed25519 verification is RFC 8032 section 5.1.7, on the curve's extended
coordinates (about 20 ms per check on a PC); ``tests/test_usign.py`` checks it against
RFC 8032's own test vectors and against images signed with keys the tests make.

Formats (usign): a public key file is a comment line and base64 of ``b"Ed"`` + 8-byte
key number + 32-byte key; a signature is a comment line and base64 of ``b"Ed"`` + key
number + 64-byte signature of the whole message.  fwtool appends the signature to an
image as ``signature text`` + a 16-byte trailer (big-endian magic ``FWx0``, CRC32, type 0,
3 pad bytes, size = text + trailer); what is signed is everything before it.
"""

import base64
import binascii
import hashlib
import os
import struct

__all__ = ["SignatureError", "read_public_keys", "parse_signature", "verify",
           "split_image", "verify_image"]

FWIMAGE_MAGIC = 0x46577830
FWIMAGE_SIGNATURE = 0
TRAILER = struct.Struct(">IIB3xI")
SIGNATURE_MAXLEN = 1024           # fwtool's limit on the appended signature

P = 2 ** 255 - 19
L = 2 ** 252 + 27742317777372353535851937790883648493
D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)


class SignatureError(ValueError):
    """The image is not signed, or not by a trusted key, or the signature is wrong."""


def _recover_x(y, sign):
    if y >= P:
        return None
    x2 = (y * y - 1) * pow(D * y * y + 1, P - 2, P) % P
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P:
        x = x * SQRT_M1 % P
    if (x * x - x2) % P:
        return None
    if x & 1 != sign:
        x = P - x
    return x


def _decode_point(data):
    y = int.from_bytes(data, "little")
    sign, y = y >> 255, y & ((1 << 255) - 1)
    x = _recover_x(y, sign)
    if x is None:
        return None
    return (x, y, 1, x * y % P)


def _add(a, b):
    x1, y1, z1, t1 = a
    x2, y2, z2, t2 = b
    aa = (y1 - x1) * (y2 - x2) % P
    bb = (y1 + x1) * (y2 + x2) % P
    cc = 2 * t1 * t2 * D % P
    dd = 2 * z1 * z2 % P
    e, f, g, h = bb - aa, dd - cc, dd + cc, bb + aa
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _mul(s, point):
    result = (0, 1, 1, 0)
    while s:
        if s & 1:
            result = _add(result, point)
        point = _add(point, point)
        s >>= 1
    return result


def _equal(a, b):
    return (a[0] * b[2] - b[0] * a[2]) % P == 0 and (a[1] * b[2] - b[1] * a[2]) % P == 0


_GY = 4 * pow(5, P - 2, P) % P
BASE = (_recover_x(_GY, 0), _GY, 1, _recover_x(_GY, 0) * _GY % P)


def encode_point(point):
    x, y, z, _ = point
    zi = pow(z, P - 2, P)
    x, y = x * zi % P, y * zi % P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def ed25519_verify(public, message_chunks, signature):
    """Whether ``signature`` (64 bytes) signs the message (an iterable of byte chunks)
    under ``public`` (32 bytes): RFC 8032 5.1.7."""
    if len(public) != 32 or len(signature) != 64:
        return False
    a = _decode_point(public)
    r = _decode_point(signature[:32])
    s = int.from_bytes(signature[32:], "little")
    if a is None or r is None or s >= L:
        return False
    h = hashlib.sha512(signature[:32] + public)
    for chunk in message_chunks:
        h.update(chunk)
    k = int.from_bytes(h.digest(), "little") % L
    return _equal(_mul(s, BASE), _add(r, _mul(k, a)))


def _blob(text, size, what):
    """The binary payload of a usign file (comment line, then base64)."""
    if isinstance(text, bytes):
        try:
            text = text.decode("ascii")
        except UnicodeDecodeError:
            raise SignatureError(f"{what}: not text")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) != 2 or not lines[0].startswith("untrusted comment:"):
        raise SignatureError(f"{what}: not a usign file")
    try:
        blob = base64.b64decode(lines[1], validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError(f"{what}: bad base64")
    if len(blob) != 10 + size or blob[:2] != b"Ed":
        raise SignatureError(f"{what}: not an Ed25519 usign {what}")
    return blob[2:10], blob[10:]


def parse_signature(text):
    """(key number, 64-byte signature) of a usign signature file's text."""
    return _blob(text, 64, "signature")


def read_public_keys(directory, max_files=64):
    """Key number -> 32-byte key for every usign public key in ``directory`` (as
    /etc/opkg/keys holds them); files that are not keys are skipped."""
    keys = {}
    try:
        names = sorted(os.listdir(directory))[:max_files]
    except OSError:
        return keys
    for name in names:
        path = os.path.join(directory, name)
        try:
            with open(path, "rb") as f:
                number, key = _blob(f.read(4096), 32, "public key")
        except (OSError, SignatureError):
            continue
        keys[number] = key
    return keys


def verify(keys, message_chunks, signature_text):
    """Raise ``SignatureError`` unless the signature is by one of ``keys`` and right."""
    number, signature = parse_signature(signature_text)
    key = keys.get(number)
    if key is None:
        raise SignatureError(f"signed by key {number.hex()}, which is not trusted")
    if not ed25519_verify(key, message_chunks, signature):
        raise SignatureError("the signature does not match the image")


def split_image(path):
    """(length of the signed part, signature text) of a sysupgrade image at ``path``
    with fwtool's signature trailer; ``SignatureError`` if it has none."""
    size = os.path.getsize(path)
    if size < TRAILER.size:
        raise SignatureError("image too short to carry a signature")
    with open(path, "rb") as f:
        f.seek(size - TRAILER.size)
        magic, _crc, kind, chunk = TRAILER.unpack(f.read(TRAILER.size))
        if magic != FWIMAGE_MAGIC or kind != FWIMAGE_SIGNATURE:
            raise SignatureError("the image carries no signature")
        if not TRAILER.size < chunk <= min(size, SIGNATURE_MAXLEN + TRAILER.size):
            raise SignatureError("the image's signature trailer is damaged")
        f.seek(size - chunk)
        text = f.read(chunk - TRAILER.size)
    return size - chunk, text


def _chunks(path, length, block=1 << 16):
    with open(path, "rb") as f:
        while length > 0:
            data = f.read(min(block, length))
            if not data:
                raise SignatureError("image shorter than its trailer says")
            length -= len(data)
            yield data


def verify_image(path, keys_dir):
    """Raise ``SignatureError`` unless the image at ``path`` carries a usign signature by
    a key in ``keys_dir`` that matches it (what ``sysupgrade`` checks with fwtool and
    usign); returns the key number (hex)."""
    keys = read_public_keys(keys_dir)
    if not keys:
        raise SignatureError(f"no usign public key in {keys_dir}")
    signed, text = split_image(path)
    verify(keys, _chunks(path, signed), text)
    return parse_signature(text)[0].hex()
