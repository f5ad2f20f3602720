"""Evaluation suites, runner and baselines (ragas and exact checks); filled in by the evals work."""
