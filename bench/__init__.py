"""The benchmark and its data generator (benchmark-only; the project never imports it).

A package so that the benchmark's modules import each other by name: `python bench/benchmark.py`
puts the repository root on sys.path, the phases' child processes run `python -m bench.phases`.
"""
