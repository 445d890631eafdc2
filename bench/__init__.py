"""Benchmarks that print their figures (``make bench``); not tests."""
