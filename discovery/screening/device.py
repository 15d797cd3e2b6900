"""Where and how wide torch runs: the thread count and device come from settings, applied here once."""

from __future__ import annotations

import torch


def configure_threads(threads: int) -> None:
    """Use ``threads`` intra-op threads; 0 keeps torch's default (one per core)."""
    if threads < 0:
        raise ValueError(f"torch threads must be >= 0 (0 = torch default), got {threads}")
    if threads and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def select_device(preference: str = "auto") -> torch.device:
    """'auto' picks CUDA when a GPU is present, else the CPU; 'cpu' and 'cuda[:n]' are taken as given."""
    if preference == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(preference)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"torch device {preference!r} requested but no CUDA GPU is available; use 'auto' or 'cpu'")
    return device
