"""Shared helpers for the speed benchmarks: run with ``pytest benchmarks/ --benchmark-only``."""


def report_rate(benchmark, work, name):
    """Store work / median time in the benchmark's extra_info and return it."""
    median = benchmark.stats.stats.median
    benchmark.extra_info[name] = work / median
    benchmark.extra_info["median_s"] = median
    return work / median
