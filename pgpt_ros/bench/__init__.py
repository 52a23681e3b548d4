"""Benchmarks behind ``pgpt-bench``: ``heads`` (head backends) and ``llm`` (the decoding path)."""
