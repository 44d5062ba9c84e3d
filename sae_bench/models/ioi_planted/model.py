"""Loading ioi-planted: built on the fly from its seed (no weight file), with ioi-circuit's
tokenizer (its vocabulary covers every word of the task and of the stress sets)."""

from __future__ import annotations

MODEL_NAME = "ioi-planted"
SEED = 0


def tokenizer():
    from sae_bench.models.ioi_tiny.model import asset_dir
    from sae_bench.models.ioi_tiny.tokenizer import load_tokenizer

    return load_tokenizer(asset_dir("ioi_circuit") / "tokenizer.json", MODEL_NAME)


def load(device: str = "cpu", seed: int = SEED):
    """ioi-planted as an eval-mode `HookedTransformer` on `device` (built in about a second)."""
    from sae_bench.models.ioi_planted.build import build

    return build(tokenizer(), seed=seed).to(device, print_details=False).eval()
