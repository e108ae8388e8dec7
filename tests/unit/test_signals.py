import os
import signal
import threading

import pytest

from dockertrace.signals import deferred


def test_a_signal_inside_the_block_arrives_after_it():
    steps = []
    with pytest.raises(KeyboardInterrupt):
        with deferred():
            os.kill(os.getpid(), signal.SIGINT)
            steps.append("inside, after the signal")
        steps.append("never: the signal is raised as the block ends")
    assert steps == ["inside, after the signal"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_handlers_are_restored_without_a_signal():
    before = signal.getsignal(signal.SIGTERM)
    with deferred():
        pass
    assert signal.getsignal(signal.SIGTERM) is before


def test_outside_the_main_thread_it_changes_nothing():
    seen = []

    def run():
        with deferred():
            seen.append(signal.getsignal(signal.SIGINT))

    t = threading.Thread(target=run)
    t.start()
    t.join()
    assert seen == [signal.default_int_handler]
