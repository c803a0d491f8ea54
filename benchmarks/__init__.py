"""Benchmarks (`make bench`): each `bench_*.py` module measures one area and returns a Markdown section."""
