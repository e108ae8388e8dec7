"""The analysis suite: benchmarks tied to kernel phases (see model.py for
the results they produce)."""
