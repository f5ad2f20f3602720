"""Metrics: PromQL against Prometheus, grounded questions, charts and firing alerts."""
