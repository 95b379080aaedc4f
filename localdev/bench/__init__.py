"""``make bench`` (``python -m localdev.bench``): throughput of the handler against baselines.

Kept empty: ``python -m localdev.bench.child`` imports this package before its timed
``import app``.
"""
