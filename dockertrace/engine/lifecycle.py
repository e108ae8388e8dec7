"""Detaching BPF programs on every way out of the process.

The kernel detaches a program when the last fd of its link closes, so
even a SIGKILLed tracer leaves nothing attached.  What this module adds is
that the *Python* cleanup runs too (``with`` blocks, ``finally``, our own
``close()``), which matters to a tracer that must flush results or restore
state:

- normal exit: an ``atexit`` hook closes every object still open;
- exceptions and Ctrl-C: ``with BpfObject(...)`` closes on the way out;
- SIGTERM: unless the application installed its own handler, it becomes
  ``SystemExit(143)`` in the main thread, so the two cases above apply;
- fork: a child inherits the objects but must not detach its parent's
  programs, so an object closed in another process than the one that
  loaded it only drops its references (see BpfObject.close).
"""

import atexit
import logging
import signal
import threading
import weakref

log = logging.getLogger(__name__)

_open = weakref.WeakSet()
_lock = threading.Lock()
_installed = False

#: Exit status of a process ended by SIGTERM, as a shell reports it.
SIGTERM_EXIT = 128 + signal.SIGTERM


def _on_sigterm(signum, frame):
    raise SystemExit(SIGTERM_EXIT)


def _close_all():
    for obj in list(_open):
        try:
            obj.close()
        except Exception:  # keep closing the others
            log.exception("closing %r at exit", obj)


def _install():
    global _installed
    if _installed:
        return
    _installed = True
    atexit.register(_close_all)

    # Signal handlers can only be set from the main thread; an application
    # that set its own SIGTERM handler keeps it.
    if threading.current_thread() is not threading.main_thread():
        log.debug("not in the main thread: SIGTERM handler not installed")
        return
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _on_sigterm)


def register(obj):
    """Track ``obj`` (it has ``close()``) until it is closed."""
    with _lock:
        _install()
        _open.add(obj)


def unregister(obj):
    with _lock:
        _open.discard(obj)


def open_objects():
    """The objects currently registered (for tests and diagnostics)."""
    return list(_open)
