"""Benchmarks: the one measurement function, records, plots, the sweep library (run) and its CLI."""
