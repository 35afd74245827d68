"""Benchmarks for colab_elastic: recording overhead, auto-checkpoints, migration and restore.

Run everything with `python -m benchmarks` (or `python -m benchmarks --quick`); see README.md.
"""
