"""Evaluation: pure scorers, check sets, the forgetting set, blind votes and the leaderboard.

Importing `evals` loads nothing heavy; embedders, ROUGE and readability libraries are imported inside the
functions that need them. Command line: `python -m evals --help`.
"""
