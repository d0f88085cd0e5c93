"""Benchmarks and the generators of their inputs.

Each module runs as a script (``python benchmarks/bench_detection.py``, see its docstring) and
imports as ``benchmarks.<name>`` from the repository root; nothing runs on import.
"""
