"""Loading the shipped ioi-circuit (same file layout and loader as ioi-tiny's)."""

from __future__ import annotations

from sae_bench.models.ioi_tiny import model as tiny_model

MODEL_NAME = "ioi-circuit"
ASSET_FOLDER = "ioi_circuit"
RETRAIN_COMMAND = ("python -m sae_bench.models.ioi_circuit.train "
                   "--out sae_bench/assets/ioi_circuit --seed 0")


def asset_dir():
    """The shipped assets (a `Traversable`; works from a wheel)."""
    return tiny_model.asset_dir(ASSET_FOLDER)


def load_from(folder, device: str = "cpu"):
    """Load ioi-circuit from a folder written by its recipe. Raises `UserError`."""
    return tiny_model.load_from(folder, device, label=MODEL_NAME, retrain_command=RETRAIN_COMMAND)


def load(device: str = "cpu"):
    """The shipped ioi-circuit as an eval-mode `HookedTransformer` with its tokenizer attached."""
    return load_from(asset_dir(), device=device)
