"""Deterministic reference-SAE training on a tensor of activations (METHOD §5).

Public API: `TrainSettings`, `train_sae`.
"""

from sae_bench.training.trainer import TrainSettings, train_sae

__all__ = ["TrainSettings", "train_sae"]
