"""Training-time forward passes and losses of the reference trainer, one per architecture.

Everything here works in the *normalised* space (``x_n = x * input_scale``, ``E‖x_n‖² = d_in``);
the encoders used at training time are written so that the saved tensors reproduce them exactly
through `sae_bench.sae.architectures` at inference (batchtopk: the batch top-k is replaced by its
learned threshold, as the contract prescribes).

Parameters live in a plain ``dict[str, Tensor]`` using the SAE contract's names: ``W_enc
[d_in, d_sae]``, ``W_dec [d_sae, d_in]``, ``b_enc [d_sae]``, ``b_dec [d_in]`` plus ``r_mag``,
``b_mag`` (gated) and ``log_threshold`` (jumprelu).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

# Rectangle-kernel bandwidth of the JumpReLU straight-through estimators, in normalised units
# (per-coordinate scale ~1 after normalisation, so latent magnitudes are O(1)).
JUMPRELU_BANDWIDTH = 1e-3
# Initial JumpReLU threshold (normalised units); the L0 penalty then moves it.
JUMPRELU_INIT_THRESHOLD = 1e-3
# AuxK (Gao et al. 2024): coefficient and how many dead latents reconstruct the residual.
AUXK_COEFF = 1.0 / 32.0
# EMA factor of the batchtopk inference threshold (running mean of the smallest kept value).
BATCHTOPK_THRESHOLD_BETA = 0.99


@dataclass
class StepOutput:
    """What one training step produced: the scalar loss and the latents ``f [batch, d_sae]``."""

    loss: Tensor
    recon: Tensor
    latents: Tensor


def sq_error(x: Tensor, x_hat: Tensor) -> Tensor:
    """Mean over the batch of ``‖x − x̂‖²``; x, x_hat ``[batch, d_in]`` -> scalar."""
    return (x - x_hat).pow(2).sum(-1).mean()


def decoder_norms(params: dict[str, Tensor]) -> Tensor:
    """Row norms of W_dec ``[d_sae]`` (weights the L1 penalty so it cannot be shrunk away)."""
    return params["W_dec"].norm(dim=-1)


def pre_activation(params: dict[str, Tensor], x: Tensor) -> Tensor:
    """``(x − b_dec) @ W_enc + b_enc``: ``[batch, d_in] -> [batch, d_sae]``."""
    return (x - params["b_dec"]) @ params["W_enc"] + params["b_enc"]


def decode(params: dict[str, Tensor], f: Tensor) -> Tensor:
    """``f @ W_dec + b_dec``: ``[batch, d_sae] -> [batch, d_in]``."""
    return f @ params["W_dec"] + params["b_dec"]


# --------------------------------------------------------------------------- relu
def relu_step(params: dict[str, Tensor], x: Tensor, l1: float) -> StepOutput:
    """ReLU SAE with decoder-norm-weighted L1: ``‖x − x̂‖² + l1·Σ f_i‖d_i‖``."""
    f = torch.relu(pre_activation(params, x))
    recon = sq_error(x, decode(params, f))
    sparsity = (f * decoder_norms(params)).sum(-1).mean()
    return StepOutput(recon + l1 * sparsity, recon, f)


# --------------------------------------------------------------------------- gated
def gated_step(params: dict[str, Tensor], x: Tensor, l1: float) -> StepOutput:
    """Gated SAE (Rajamanoharan et al. 2024) with weight sharing ``W_mag = W_gate ⊙ exp(r_mag)``.

    The gate receives gradient only through the L1 on ``ReLU(π_gate)`` and the auxiliary loss
    (the Heaviside in ``f`` has zero derivative), which reconstructs ``x`` from ``ReLU(π_gate)``
    through a *frozen* copy of the decoder so the auxiliary task cannot reshape the dictionary.
    """
    shared = (x - params["b_dec"]) @ params["W_enc"]  # [batch, d_sae]
    pi_gate = shared + params["b_enc"]
    pi_mag = shared * torch.exp(params["r_mag"]) + params["b_mag"]
    f = (pi_gate > 0).to(x.dtype) * torch.relu(pi_mag)
    recon = sq_error(x, decode(params, f))
    gate_acts = torch.relu(pi_gate)
    sparsity = (gate_acts * decoder_norms(params)).sum(-1).mean()
    aux_hat = gate_acts @ params["W_dec"].detach() + params["b_dec"].detach()
    aux = sq_error(x, aux_hat)
    return StepOutput(recon + l1 * sparsity + aux, recon, f)


# --------------------------------------------------------------------------- topk / batchtopk
def _auxk(params: dict[str, Tensor], acts: Tensor, residual: Tensor, dead: Tensor) -> Tensor:
    """AuxK loss: reconstruct the (detached) residual with the top dead latents.

    acts ``[batch, d_sae]`` (post-ReLU), residual ``[batch, d_in]``, dead ``[d_sae]`` bool.
    Normalised by the residual's variance so the coefficient means the same at any loss level.
    """
    n_dead = int(dead.sum())
    if n_dead == 0:
        return acts.new_zeros(())
    k_aux = min(n_dead, max(1, x_width(residual) // 2))
    masked = torch.where(dead, acts, torch.zeros_like(acts))
    values, indices = masked.topk(k_aux, dim=-1, sorted=False)
    aux_f = torch.zeros_like(acts).scatter(-1, indices, values)
    e_hat = aux_f @ params["W_dec"]
    variance = (residual - residual.mean(0)).pow(2).sum(-1).mean().clamp_min(1e-8)
    return (residual - e_hat).pow(2).sum(-1).mean() / variance


def x_width(x: Tensor) -> int:
    """Last-dimension width of ``x [..., d]``."""
    return int(x.shape[-1])


def topk_step(params: dict[str, Tensor], x: Tensor, k: int, dead: Tensor) -> StepOutput:
    """TopK SAE: keep the k largest ReLU pre-activations per row, plus AuxK on dead latents."""
    acts = torch.relu(pre_activation(params, x))
    values, indices = acts.topk(k, dim=-1, sorted=False)
    f = torch.zeros_like(acts).scatter(-1, indices, values)
    x_hat = decode(params, f)
    recon = sq_error(x, x_hat)
    aux = _auxk(params, acts, (x - x_hat).detach(), dead)
    return StepOutput(recon + AUXK_COEFF * aux, recon, f)


def batchtopk_step(
    params: dict[str, Tensor], x: Tensor, k: int, dead: Tensor
) -> tuple[StepOutput, float | None]:
    """BatchTopK SAE: keep the top ``k·batch`` ReLU pre-activations over the whole batch.

    Returns the step output and the smallest positive kept activation (None if none), which the
    trainer averages into the inference threshold θ.
    """
    acts = torch.relu(pre_activation(params, x))
    flat = acts.flatten()
    n_keep = min(k * acts.shape[0], flat.numel())
    values, indices = flat.topk(n_keep, sorted=False)
    f = torch.zeros_like(flat).scatter(-1, indices, values).view_as(acts)
    positive = values[values > 0]
    min_kept = float(positive.min().detach()) if positive.numel() else None
    x_hat = decode(params, f)
    recon = sq_error(x, x_hat)
    aux = _auxk(params, acts, (x - x_hat).detach(), dead)
    return StepOutput(recon + AUXK_COEFF * aux, recon, f), min_kept


# --------------------------------------------------------------------------- jumprelu
def _rectangle(u: Tensor) -> Tensor:
    return ((u > -0.5) & (u < 0.5)).to(u.dtype)


class _JumpReLU(torch.autograd.Function):
    """``z·1[z > θ]``; STE: d/dz = 1[z > θ], d/dθ = −(θ/ε)·K((z − θ)/ε)."""

    @staticmethod
    def forward(ctx, z: Tensor, theta: Tensor) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(z, theta)
        return z * (z > theta).to(z.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        z, theta = ctx.saved_tensors
        eps = JUMPRELU_BANDWIDTH
        grad_z = (z > theta).to(z.dtype) * grad
        grad_theta = -(theta / eps) * _rectangle((z - theta) / eps) * grad
        return grad_z, grad_theta.sum(0)


class _Step(torch.autograd.Function):
    """``H(z − θ)``; STE: no gradient to z, d/dθ = −(1/ε)·K((z − θ)/ε)."""

    @staticmethod
    def forward(ctx, z: Tensor, theta: Tensor) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(z, theta)
        return (z > theta).to(z.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        z, theta = ctx.saved_tensors
        eps = JUMPRELU_BANDWIDTH
        grad_theta = -(1.0 / eps) * _rectangle((z - theta) / eps) * grad
        return torch.zeros_like(z), grad_theta.sum(0)


def jumprelu_step(params: dict[str, Tensor], x: Tensor, l1: float) -> StepOutput:
    """JumpReLU SAE (Rajamanoharan et al. 2024b): reconstruction + ``l1·Σ_i H(z_i − θ_i)``.

    θ = exp(log_threshold) > 0, so ``z·1[z > θ]`` equals the contract's ``ReLU(z)·1[z > θ]``.
    """
    z = pre_activation(params, x)
    theta = torch.exp(params["log_threshold"])
    f = _JumpReLU.apply(z, theta)
    recon = sq_error(x, decode(params, f))
    l0 = _Step.apply(z, theta).sum(-1).mean()
    return StepOutput(recon + l1 * l0, recon, f)
