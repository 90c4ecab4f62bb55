"""Wiring point of ``twistd cubegw`` (filled in by the gateway core)."""
