"""Evaluation and benchmarks: score any model (ours or a peer) through the same pipeline on the same data."""
