"""Tracing and cost attribution."""
