"""Benchmarks run by `tandem bench NAME`; each module exposes a click command `cli`."""
