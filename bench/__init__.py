"""Benchmarks: figures against a baseline measured on the same machine in the same run.

Run with ``make bench``. Tests never assert wall-clock times; benchmarks only print and record them.
"""
