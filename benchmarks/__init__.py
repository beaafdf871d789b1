"""Benchmarks: scripts that time our kernels against PyTorch and write tables, JSON and plots."""
