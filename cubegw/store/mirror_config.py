"""The mirror the daemon's YAML configures (``store.persist_dir`` or
``store.fw_env``), read with PyYAML when present, else with a line reader
good for the router's flat ``store:`` block.  Part of
``cubegw.store.mirror``, which re-exports it.
"""

from typing import Optional

from cubegw.store.mirror_backends import DirectoryMirror, FwEnvMirror, IMirror, _subprocess_run
from cubegw.store.mirror_codec import MirrorError


def _scalar(text: str):
    text = text.split(" #", 1)[0].strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    lowered = text.lower()
    if lowered in ("true", "yes", "on"):
        return True
    if lowered in ("false", "no", "off"):
        return False
    if lowered in ("", "null", "~"):
        return None
    return text


def read_store_keys(text: str) -> dict:
    """The ``store`` mapping of the daemon's YAML (PyYAML, else a line reader
    good for the router's flat ``store:`` block)."""
    try:
        import yaml
    except ImportError:
        yaml = None
    if yaml is not None:
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise MirrorError(f"not valid YAML: {e}") from None
        store = raw.get("store") if isinstance(raw, dict) else None
        return store if isinstance(store, dict) else {}
    store, inside = {}, False
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line[0].isspace():
            inside = line.split("#", 1)[0].strip() == "store:"
            continue
        if inside and ":" in line:
            key, _, value = line.strip().partition(":")
            store[key.strip()] = _scalar(value)
    return store


def mirror_from_config(store: dict, run=_subprocess_run) -> Optional[IMirror]:
    """The mirror that ``store.persist_dir`` / ``store.fw_env`` configure, or None."""
    persist_dir = store.get("persist_dir")
    fw_env = store.get("fw_env", False)
    if persist_dir not in (None, "") and not isinstance(persist_dir, str):
        raise MirrorError("store.persist_dir: must be a string")
    if not isinstance(fw_env, bool):
        raise MirrorError("store.fw_env: must be true or false")
    if persist_dir and fw_env:
        raise MirrorError("store.persist_dir and store.fw_env: set one, not both")
    if persist_dir:
        return DirectoryMirror(persist_dir)
    if fw_env:
        return FwEnvMirror(run)
    return None
