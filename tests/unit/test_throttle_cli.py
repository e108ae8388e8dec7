"""The terminal timeline of `dockertrace throttle`."""

from dockertrace.cli.throttle import timeline_row
from dockertrace.throttle.periods import Period

MS = 1_000_000


def row(start, throttled_ns):
    return Period(start * MS, (start + 100) * MS, 100 * MS, 20 * MS, 0,
                  20 * MS, 1, 1 if throttled_ns else 0, throttled_ns)


def test_one_column_per_period():
    periods = [row(0, 80 * MS), row(100, 0), row(300, 30 * MS)]
    # Idle from 200 to 300 ms: the timer stopped, nothing ran.
    assert timeline_row(periods, 0, 400 * MS, width=4) == "█· ▒"


def test_width_is_kept():
    periods = [row(i * 100, 80 * MS) for i in range(100)]
    assert timeline_row(periods, 0, 10_000 * MS, width=56) == "█" * 56
    assert timeline_row([], 0, 0, width=10) == " " * 10
