"""Small builders shared by tests (imported explicitly, not fixtures)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import torch

from sae_bench.sae import SAE


def identity_sae(d_in: int, hook: str, position: str | None = "END", head=None) -> SAE:
    """ReLU SAE with W_enc = [I, -I], W_dec = [I; -I]: reconstructs every input exactly."""
    eye = torch.eye(d_in)
    return SAE(
        W_enc=torch.cat([eye, -eye], 1),
        W_dec=torch.cat([eye, -eye], 0),
        b_enc=torch.zeros(2 * d_in),
        b_dec=torch.zeros(d_in),
        architecture="relu",
        hook_name=hook,
        head=head,
        position=position,
    )


def assert_training_deterministic_per_seed(train_raw: Callable[..., tuple], cfg: Any) -> None:
    """A shipped model's recipe (`train_raw(cfg, progress=False) -> (model, ...)`): the same
    seed gives identical weights, another seed different block weights."""
    def weights(c) -> dict[str, torch.Tensor]:
        model = train_raw(c, progress=False)[0]
        return {k: v.detach().clone() for k, v in model.state_dict().items()}

    a, b = weights(cfg), weights(cfg)
    c = weights(dataclasses.replace(cfg, seed=1))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a if k.startswith("blocks"))


def recipe_flags(cfg: Any) -> list[str]:
    """Command-line flags that reproduce a recipe's config dataclass (one per field)."""
    return [arg for f in dataclasses.fields(cfg)
            for arg in (f"--{f.name.replace('_', '-')}", str(getattr(cfg, f.name)))]
