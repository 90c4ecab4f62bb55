"""cubegw: the smart home gateway agent and its reference platform."""

__version__ = "0.1.0"
