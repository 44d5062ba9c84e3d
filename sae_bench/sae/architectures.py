"""Encoders of the supported SAE architectures (METHOD §5), all on *normalised* input.

Each encoder maps ``x_n = x * input_scale`` of shape ``[..., d_in]`` to latents ``[..., d_sae]``.
The decoder is the same affine map for every architecture (``f @ W_dec + b_dec``) and lives on
the `SAE` itself.

Conventions shared by SAELens, dictionary_learning and sparsify, which these reproduce exactly:

- ``relu``:      ``f = ReLU(pre)``, ``pre = (x - b_dec·[apply_b_dec_to_input]) @ W_enc + b_enc``.
- ``topk``:      keep the k largest entries of ``ReLU(pre)`` per row, zero the rest. (SAELens
  applies ReLU after the top-k, sparsify before; both give the same output.)
- ``batchtopk``: inference form with the learned threshold: ``a = ReLU(pre); f = a·1[a > θ]``.
  The batch-level top-k is a training-time device only.
- ``jumprelu``:  ``f = ReLU(pre)·1[pre > θ]``; equals METHOD's ``pre·1[pre > θ]`` for θ ≥ 0 and
  matches SAELens/dictionary_learning for any θ.
- ``gated``:     ``u = x_c @ W_enc``; ``π_gate = u + b_gate`` (stored as ``b_enc``);
  ``π_mag = u·exp(r_mag) + b_mag``; ``f = 1[π_gate > 0]·ReLU(π_mag)``. ``u·exp(r_mag)`` is
  ``x_c @ (W_enc ⊙ exp(r_mag))`` because ``r_mag`` scales whole latent columns.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from sae_bench.errors import unknown_name
from sae_bench.sae.contract import SAEParams

Encoder = Callable[[SAEParams, Tensor], Tensor]


def centered(sae: SAEParams, x_n: Tensor) -> Tensor:
    """Input minus the decoder bias when the architecture centres its input. [..., d_in]"""
    return x_n - sae.b_dec if sae.apply_b_dec_to_input else x_n


def pre_activation(sae: SAEParams, x_n: Tensor) -> Tensor:
    """Affine encoder output ``[..., d_sae]`` (for gated: the gate pre-activation π_gate)."""
    return centered(sae, x_n) @ sae.W_enc + sae.b_enc


def _relu(sae: SAEParams, x_n: Tensor) -> Tensor:
    return torch.relu(pre_activation(sae, x_n))


def _topk(sae: SAEParams, x_n: Tensor) -> Tensor:
    acts = torch.relu(pre_activation(sae, x_n))
    assert sae.k is not None  # guaranteed by validation
    values, indices = acts.topk(int(sae.k), dim=-1, sorted=False)
    return torch.zeros_like(acts).scatter_(-1, indices, values)


def _batchtopk(sae: SAEParams, x_n: Tensor) -> Tensor:
    assert sae.threshold is not None  # guaranteed by validation
    acts = torch.relu(pre_activation(sae, x_n))
    return acts * (acts > sae.threshold)


def _jumprelu(sae: SAEParams, x_n: Tensor) -> Tensor:
    assert sae.threshold is not None  # guaranteed by validation
    pre = pre_activation(sae, x_n)
    return torch.relu(pre) * (pre > sae.threshold)


def _gated(sae: SAEParams, x_n: Tensor) -> Tensor:
    assert sae.r_mag is not None and sae.b_mag is not None  # guaranteed by validation
    shared = centered(sae, x_n) @ sae.W_enc
    pi_gate = shared + sae.b_enc
    pi_mag = shared * torch.exp(sae.r_mag) + sae.b_mag
    return (pi_gate > 0).to(shared.dtype) * torch.relu(pi_mag)


ENCODERS: dict[str, Encoder] = {
    "relu": _relu,
    "gated": _gated,
    "topk": _topk,
    "batchtopk": _batchtopk,
    "jumprelu": _jumprelu,
}
ARCHITECTURES: tuple[str, ...] = tuple(ENCODERS)

# Per-architecture extra tensors (beyond W_enc, W_dec, b_enc, b_dec) that must be present.
REQUIRED_EXTRAS: dict[str, tuple[str, ...]] = {
    "relu": (),
    "gated": ("r_mag", "b_mag"),
    "topk": (),
    "batchtopk": ("threshold",),
    "jumprelu": ("threshold",),
}
EXTRA_TENSORS: tuple[str, ...] = ("threshold", "r_mag", "b_mag")


def check_architecture(name: str) -> str:
    """Return `name` if it is a supported architecture, else a did-you-mean `UserError`."""
    if name not in ENCODERS:
        raise unknown_name("architecture", name, ARCHITECTURES)
    return name


def encode_normalized(sae: SAEParams, x_n: Tensor) -> Tensor:
    """Latents ``[..., d_sae]`` of normalised input ``[..., d_in]``."""
    return ENCODERS[sae.architecture](sae, x_n)
