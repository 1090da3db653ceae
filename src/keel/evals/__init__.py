"""Prompts and evals: the prompt registry, datasets, scorers, judges, statistics, the promotion gate."""
