"""Small builders shared by tests (imported explicitly, not fixtures)."""

from __future__ import annotations

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
