"""Issue 18 point 5: usign (Ed25519) signatures of firmware images, verified in pure
Python (``cubegw.usign``), with keys and images the tests make."""

import os

from twisted.trial.unittest import SynchronousTestCase

from cubegw import usign

from tests.helpers.usign import TestKey, append_signature, keypair, sign, signature_file

#: RFC 8032 7.1, tests 1 and 2: (seed, public key, message, signature).
VECTORS = [
    ("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e3970"
     "1cf9b46bd25bf5f0595bbe24655141438e7a100b"),
    ("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613"
     "d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"),
]


class Ed25519Tests(SynchronousTestCase):
    def test_rfc8032_vectors(self):
        """The RFC's keys and signatures come out, and verify; a changed byte does not."""
        for seed, public, message, signature in VECTORS:
            secret, pub = keypair(bytes.fromhex(seed))
            self.assertEqual(pub.hex(), public)
            sig = sign(secret, pub, bytes.fromhex(message))
            self.assertEqual(sig.hex(), signature)
            self.assertTrue(usign.ed25519_verify(pub, [bytes.fromhex(message)], sig))
            bad = bytes([sig[0] ^ 1]) + sig[1:]
            self.assertFalse(usign.ed25519_verify(pub, [bytes.fromhex(message)], bad))
            self.assertFalse(usign.ed25519_verify(pub, [b"other"], sig))

    def test_malformed_inputs(self):
        """Short keys, short signatures and S >= L are refused, never an exception."""
        _, pub = keypair(b"\1" * 32)
        self.assertFalse(usign.ed25519_verify(pub[:31], [b""], b"\0" * 64))
        self.assertFalse(usign.ed25519_verify(pub, [b""], b"\0" * 63))
        self.assertFalse(usign.ed25519_verify(pub, [b""], b"\0" * 32 + b"\xff" * 32))
        self.assertFalse(usign.ed25519_verify(b"\xff" * 32, [b""], b"\0" * 64))


class ImageTests(SynchronousTestCase):
    def setUp(self):
        self.dir = os.path.abspath(self.mktemp())
        self.keys = os.path.join(self.dir, "keys")
        self.key = TestKey(b"\7" * 32, number=b"\x12\x34\x56\x78\x9a\xbc\xde\xf0")
        self.key.write_public(self.keys)
        self.image = os.urandom(3000) * 7

    def write(self, data):
        path = os.path.join(self.dir, "image.bin")
        with open(path, "wb") as f:
            f.write(data)
        return path

    def test_signed_image_verifies(self):
        """An image signed by a trusted key (fwtool trailer) verifies; the key is named."""
        path = self.write(self.key.sign_image(self.image))
        self.assertEqual(usign.verify_image(path, self.keys), "123456789abcdef0")

    def test_refusals(self):
        """Unsigned, signed by another key, tampered, a damaged trailer, no keys: refused."""
        other = TestKey(b"\8" * 32, number=b"\x99" * 8)
        same_number = TestKey(b"\9" * 32, number=self.key.number)
        signed = self.key.sign_image(self.image)
        cases = {
            "unsigned": self.image,
            "other key": other.sign_image(self.image),
            "wrong key, same number": same_number.sign_image(self.image),
            # flipped, not replaced: the random image's first byte may already be b"X"
            "tampered": bytes([signed[0] ^ 0xFF]) + signed[1:],
            "trailer size huge": signed[:-4] + b"\xff\xff\xff\xff",
            "garbage signature": append_signature(self.image, b"not a signature\n"),
            "short": b"FWx0",
        }
        for name, data in cases.items():
            with self.assertRaises(usign.SignatureError, msg=name):
                usign.verify_image(self.write(data), self.keys)
        with self.assertRaises(usign.SignatureError):
            usign.verify_image(self.write(signed), os.path.join(self.dir, "nokeys"))

    def test_signature_file_format(self):
        """The signature text is usign's: a comment line and base64 of Ed + number + sig."""
        sig = signature_file(b"\1" * 8, b"\2" * 64)
        number, raw = usign.parse_signature(sig)
        self.assertEqual((number, raw), (b"\1" * 8, b"\2" * 64))
        for bad in (b"", b"no comment\nAAAA\n", b"untrusted comment: x\n!!!\n", b"\xff\n"):
            self.assertRaises(usign.SignatureError, usign.parse_signature, bad)
