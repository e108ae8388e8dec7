"""Reading a BPF ring buffer: each record handed to a Python callable."""

import errno
import logging
import threading

from dockertrace.engine import raw
from dockertrace.errors import TraceError

log = logging.getLogger(__name__)


class RingBuffer:
    """Records of one ring buffer map, delivered to ``callback(bytes)``.

    The callback runs inside :meth:`poll` or :meth:`consume`, in the
    calling thread.  If it raises (KeyboardInterrupt included), reading
    stops after that record and the exception comes out of the
    :meth:`poll` or :meth:`consume` call that ran it.

    :meth:`close` from another thread waits for a running :meth:`poll` to
    return (so keep poll timeouts short); from inside the callback it takes
    effect when the poll returns.
    """

    def __init__(self, map_fd, callback, name="dt_events"):
        self.name = name
        self._callback = callback
        self._error = None
        # Freeing the libbpf ring buffer while a poll runs on it would be a
        # use after free: polls and close take this lock.
        self._lock = threading.Lock()
        self._polling = None
        self._close_pending = False
        # The handle must outlive the libbpf ring buffer that holds it.
        self._handle = raw.ffi.new_handle(self._on_record)
        try:
            self._rb = raw.ringbuf_new(map_fd, self._handle)
        except OSError as err:
            raise TraceError(
                f"cannot read ring buffer {name}: {err.strerror}",
                errno=err.errno) from err

    def _on_record(self, data):
        try:
            self._callback(data)
        except BaseException as exc:  # re-raised by _run, in the caller
            self._error = exc
            return -1
        return 0

    def _run(self, fn, *args):
        with self._lock:
            if self._rb is None:
                raise TraceError(f"ring buffer {self.name} is closed")
            self._polling = threading.get_ident()
            try:
                count = fn(self._rb, *args)
            except OSError as err:
                if self._error is not None:
                    exc, self._error = self._error, None
                    raise exc from None
                # A signal woke epoll; Python runs its handler (and
                # raises, for SIGINT) as soon as we return.
                if err.errno == errno.EINTR:
                    return 0
                raise TraceError(
                    f"reading ring buffer {self.name}: {err.strerror}",
                    errno=err.errno) from err
            finally:
                self._polling = None
                if self._close_pending:
                    self._free()
        return count

    def poll(self, timeout_ms=100):
        """Wait up to ``timeout_ms`` for records and deliver them.

        Returns the number delivered (0 on timeout).  ``timeout_ms=-1``
        waits until something arrives.
        """
        return self._run(raw.ringbuf_poll, timeout_ms)

    def consume(self):
        """Deliver every record available now, without waiting."""
        return self._run(raw.ringbuf_consume)

    def close(self):
        if self._polling == threading.get_ident():
            # Called by the callback: libbpf is still iterating the ring.
            self._close_pending = True
            return
        with self._lock:
            self._free()

    def _free(self):
        if self._rb is not None:
            raw.ringbuf_free(self._rb)
            self._rb = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
