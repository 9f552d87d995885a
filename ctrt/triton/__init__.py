"""Triton Inference Server: model repositories (plain and stateful), the Python models they ship, `ctrt serve`."""
