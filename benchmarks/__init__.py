"""Benchmarks of the app and the fine-tune tab; ``benchmarks.loadtest`` is the load, soak and fault test."""
