"""Holding Ctrl-C and SIGTERM back across a step that must not be cut.

Creating a container is one Engine API request: interrupted while the
daemon works on it, the container exists but the caller never learns its
id, and no cleanup can find it for sure (a look-up by label may run
before the daemon has finished creating it). So the request and the
bookkeeping that follows it run with the signals held: a signal that
arrives meanwhile is delivered, to whatever handler was there, right
after the block ends.
"""

import contextlib
import signal
import threading

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def deferred():
    # Handlers can only be changed from the main thread; elsewhere the
    # signals go to the main thread anyway and do not interrupt this one.
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending = []
    old = {}
    for sig in _SIGNALS:
        old[sig] = signal.signal(sig, lambda s, f: pending.append(s))
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        for sig in pending:
            signal.raise_signal(sig)
