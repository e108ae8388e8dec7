"""The BPF engine: feature probes, loading, ring buffers, cleanup.

Public names are imported lazily, so that the pure parts
(``dockertrace.engine.points``) work without the C extension and importing
the package stays cheap::

    from dockertrace import engine

    with engine.BpfObject("startup") as obj:
        obj.map("dt_su_cfg").update(0, cfg)
        ring = obj.ring_buffer(handle_event)
        while True:
            ring.poll(100)
"""

import importlib

_EXPORTS = {
    "BpfObject": "loader",
    "Map": "loader",
    "plan": "loader",
    "available_objects": "loader",
    "RingBuffer": "ringbuf",
    "Outcome": "features",
    "Probe": "features",
    "FEATURES": "features",
    "probe": "features",
    "probe_all": "features",
    "MECHANISMS": "points",
    "Point": "points",
    "group_points": "points",
    "choose": "points",
}

_SUBMODULES = ("features", "lifecycle", "loader", "points", "raw", "ringbuf")

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
