"""A small deterministic reference-SAE trainer (METHOD §5) on a tensor of activations.

`train_sae(acts, TrainSettings(...))` returns an `SAE` whose inference path
(`sae_bench.sae.architectures`) encodes exactly as the model was trained to (batchtopk: through
its learned threshold). Training happens in the normalised space ``x_n = x·s`` with
``E‖x_n‖² = d_in``; ``s`` becomes the SAE's ``input_scale``.

Determinism: one explicit CPU `torch.Generator` seeded from ``settings.seed`` drives the
initialisation, the batch order and resampling; no global RNG is read or written, and everything
is float32, so the same seed gives bit-identical weights on CPU.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor

from sae_bench.errors import UserError
from sae_bench.sae import SAE
from sae_bench.sae.architectures import check_architecture
from sae_bench.training import architectures as arch

# A latent is "dead" when it has not fired for this fraction of the run (at least 10 steps).
DEAD_WINDOW_FRACTION = 0.1
# ReLU resampling happens at these fractions of the run (Bricken et al. 2023, scaled down).
RESAMPLE_AT = (0.2, 0.4, 0.6)
# Resampled encoder columns get this times the mean alive encoder-column norm.
RESAMPLE_ENC_SCALE = 0.2
# Learning-rate multiplier of jumprelu's log-threshold parameters (see train_sae).
THRESHOLD_LR_MULT = 10.0
# Number of batches scored to pick high-loss inputs when resampling.
RESAMPLE_POOL_BATCHES = 8


@dataclass(frozen=True)
class TrainSettings:
    """Hyper-parameters of one training run.

    `l1` is the sparsity coefficient: relu (decoder-norm-weighted L1), gated (L1 on
    ``ReLU(π_gate)``), jumprelu (L0 coefficient). `k` is the number of active latents per
    sample (topk) or per sample on average over a batch (batchtopk).
    """

    architecture: str
    d_sae: int
    l1: float | None = None
    k: int | None = None
    steps: int = 2000
    batch_size: int = 256
    lr: float = 1e-3
    seed: int = 0


class _ProgressLike(Protocol):
    def bar(self, iterable: Any, desc: str, total: int | None = None) -> Any: ...


def _check_settings(s: TrainSettings) -> None:
    check_architecture(s.architecture)
    if s.architecture in ("relu", "gated", "jumprelu"):
        if s.l1 is None or not s.l1 >= 0:
            raise UserError(f"{s.architecture} training needs l1 >= 0 (got {s.l1!r}).")
    if s.architecture in ("topk", "batchtopk"):
        if s.k is None or isinstance(s.k, bool) or not 1 <= s.k <= s.d_sae:
            raise UserError(f"{s.architecture} training needs k in 1..d_sae={s.d_sae} "
                            f"(got {s.k!r}).")
    for name in ("d_sae", "steps", "batch_size"):
        if int(getattr(s, name)) < 1:
            raise UserError(f"TrainSettings.{name} must be >= 1 (got {getattr(s, name)!r}).")
    if not s.lr > 0:
        raise UserError(f"TrainSettings.lr must be > 0 (got {s.lr!r}).")


def input_scale_for(acts: Tensor) -> float:
    """``s`` with ``E‖x·s‖² = d_in`` over the rows of ``acts [n, d_in]``."""
    mean_sq = float(acts.double().pow(2).sum(-1).mean())
    if not mean_sq > 0 or not math.isfinite(mean_sq):
        raise UserError("train_sae: activations are all zero or not finite, so they cannot be "
                        "normalised; train at a node whose activations vary.")
    return math.sqrt(acts.shape[-1] / mean_sq)


def init_params(x: Tensor, s: TrainSettings, gen: torch.Generator) -> dict[str, Tensor]:
    """Initial parameters for normalised data ``x [n, d_in]``.

    W_dec has random unit-norm rows and W_enc is its transpose (so each latent starts as a
    matched filter); b_dec is the data mean, so the encoder sees centred input from step one.
    """
    d_in = x.shape[1]
    w_dec = torch.randn(s.d_sae, d_in, generator=gen, dtype=torch.float32)
    w_dec = w_dec / w_dec.norm(dim=-1, keepdim=True)
    params = {
        "W_enc": w_dec.t().clone(),
        "W_dec": w_dec,
        "b_enc": torch.zeros(s.d_sae),
        "b_dec": x.mean(0).float(),
    }
    if s.architecture == "gated":
        params["r_mag"] = torch.zeros(s.d_sae)
        params["b_mag"] = torch.zeros(s.d_sae)
    if s.architecture == "jumprelu":
        params["log_threshold"] = torch.full((s.d_sae,), math.log(arch.JUMPRELU_INIT_THRESHOLD))
    return params


def _batches(n: int, batch: int, steps: int, gen: torch.Generator) -> Tensor:
    """Row indices ``[steps, batch]``: concatenated seeded permutations (epochs) of ``range(n)``."""
    need = steps * batch
    perms = [torch.randperm(n, generator=gen) for _ in range(-(-need // n))]
    return torch.cat(perms)[:need].view(steps, batch)


@torch.no_grad()
def _resample_dead(
    params: dict[str, Tensor], opt: torch.optim.Adam, x: Tensor, dead: Tensor,
    batch: int, l1: float, gen: torch.Generator,
) -> int:
    """Re-initialise dead latents (``dead [d_sae]`` bool) towards high-loss inputs.

    Inputs are drawn with probability ∝ squared reconstruction loss; the new decoder row is the
    unit residual ``x − x̂`` of the drawn input, the encoder column the same direction at
    ``RESAMPLE_ENC_SCALE`` × the mean alive encoder norm, ``b_enc = 0``; Adam's moments for those
    entries are cleared so stale statistics do not throw them straight back. Returns the count.
    """
    idx_dead = dead.nonzero().flatten()
    n_dead = int(idx_dead.numel())
    if n_dead == 0:
        return 0
    pool = torch.randint(x.shape[0], (RESAMPLE_POOL_BATCHES * batch,), generator=gen)
    xp = x[pool.to(x.device)]
    residual = xp - arch.relu_step(params, xp, l1).latents @ params["W_dec"] - params["b_dec"]
    loss = residual.pow(2).sum(-1)
    if not float(loss.sum()) > 0:
        return 0
    chosen = torch.multinomial(loss.pow(2).cpu().double(), n_dead, replacement=True, generator=gen)
    dirs = residual[chosen.to(x.device)]
    dirs = dirs / dirs.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    alive = ~dead
    enc_norm = params["W_enc"][:, alive].norm(dim=0).mean() if alive.any() else torch.tensor(1.0)
    params["W_dec"][idx_dead] = dirs
    params["W_enc"][:, idx_dead] = dirs.t() * RESAMPLE_ENC_SCALE * enc_norm
    params["b_enc"][idx_dead] = 0.0
    for name, rows in (("W_dec", (idx_dead,)), ("W_enc", (slice(None), idx_dead)),
                       ("b_enc", (idx_dead,))):
        state = opt.state.get(params[name], {})
        for key in ("exp_avg", "exp_avg_sq"):
            if key in state:
                state[key][rows] = 0.0
    return n_dead


def train_sae(
    acts: Tensor,
    settings: TrainSettings,
    *,
    hook_name: str | None = None,
    head: int | None = None,
    position: str | None = None,
    progress: _ProgressLike | None = None,
    initial: Mapping[str, Tensor] | None = None,
) -> SAE:
    """Train an SAE on activations ``acts [n, d_in]`` (leading dims are flattened).

    `initial` overrides named initial parameters (e.g. ``{"b_enc": ...}``; for tests and warm
    starts). Returns an `SAE` in the original activation space (``input_scale`` records the
    normalisation) with the settings, final loss and L0 in its metadata.
    """
    _check_settings(settings)
    s = settings
    if acts.ndim < 2 or acts.shape[0] == 0 or not acts.is_floating_point():
        raise UserError(f"train_sae needs float activations [n, d_in]; got shape "
                        f"{tuple(acts.shape)} dtype {acts.dtype}.")
    x = acts.detach().reshape(-1, acts.shape[-1]).to(torch.float32).cpu()
    scale = input_scale_for(x)
    x = x * scale
    n, d_in = x.shape
    gen = torch.Generator(device="cpu").manual_seed(int(s.seed))
    params = init_params(x, s, gen)
    for name, value in (initial or {}).items():
        if name not in params or params[name].shape != value.shape:
            raise UserError(f"train_sae: initial[{name!r}] does not match a parameter's shape.")
        params[name] = value.detach().to(torch.float32).cpu().clone()
    for p in params.values():
        p.requires_grad_(True)
    # log θ is a log-parameter: Adam moves it by ~lr per step in *relative* terms, far too slowly
    # for short runs, so it gets a larger step (GDM train ~100k steps; this is meant for ~1k).
    groups: list[dict[str, Any]] = [
        {"params": [t for name, t in params.items() if name != "log_threshold"], "lr": s.lr}
    ]
    if "log_threshold" in params:
        groups.append({"params": [params["log_threshold"]], "lr": s.lr * THRESHOLD_LR_MULT})
    opt = torch.optim.Adam(groups, lr=s.lr, foreach=False)

    batch = min(s.batch_size, n)
    order = _batches(n, batch, s.steps, gen)
    window = max(10, int(s.steps * DEAD_WINDOW_FRACTION))
    resample_steps = {int(s.steps * f) for f in RESAMPLE_AT if int(s.steps * f) >= window}
    since_fired = torch.zeros(s.d_sae, dtype=torch.long)
    theta: float | None = None  # batchtopk's running inference threshold
    losses: list[float] = []
    l0s: list[float] = []
    n_resampled = 0
    unit_decoder = s.architecture in ("topk", "batchtopk", "jumprelu")
    step_fn = _step_function(s)

    steps_iter: Any = range(s.steps)
    if progress is not None:
        steps_iter = progress.bar(steps_iter, desc=f"train {s.architecture} SAE", total=s.steps)
    for step in steps_iter:
        if s.architecture == "relu" and step in resample_steps:
            n_resampled += _resample_dead(params, opt, x, since_fired >= window, batch,
                                          float(s.l1 or 0.0), gen)
            since_fired.zero_()
        xb = x[order[step]]
        dead = since_fired >= window
        out, min_kept = step_fn(params, xb, dead)
        if min_kept is not None:
            b = arch.BATCHTOPK_THRESHOLD_BETA
            theta = min_kept if theta is None else b * theta + (1 - b) * min_kept
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        opt.step()
        with torch.no_grad():
            if unit_decoder:
                # TopK-style SAEs keep unit decoder rows so latent magnitudes carry the scale.
                params["W_dec"].div_(params["W_dec"].norm(dim=-1, keepdim=True).clamp_min(1e-8))
            fired = (out.latents > 0).any(0)
            since_fired = torch.where(fired, torch.zeros_like(since_fired), since_fired + 1)
            losses.append(float(out.loss))
            l0s.append(float((out.latents > 0).float().sum(-1).mean()))
        if hasattr(steps_iter, "set_postfix") and (step % 25 == 0 or step == s.steps - 1):
            steps_iter.set_postfix(loss=f"{losses[-1]:.4g}", l0=f"{l0s[-1]:.1f}")

    tail = max(1, s.steps // 20)
    metadata = {
        "trained_by": "sae_bench.training",
        "settings": dataclasses.asdict(s),
        "steps": s.steps,
        "final_loss": sum(losses[-tail:]) / tail,
        "final_train_l0": sum(l0s[-tail:]) / tail,
        "n_train": n,
        "n_resampled": n_resampled,
    }
    final = {name: t.detach().clone() for name, t in params.items()}
    extras: dict[str, Any] = {}
    if s.architecture == "gated":
        extras = {"r_mag": final["r_mag"], "b_mag": final["b_mag"]}
    elif s.architecture == "topk":
        extras = {"k": s.k}
    elif s.architecture == "batchtopk":
        extras = {"k": s.k, "threshold": torch.full((s.d_sae,), theta or 0.0)}
    elif s.architecture == "jumprelu":
        extras = {"threshold": torch.exp(final["log_threshold"])}
    return SAE(
        W_enc=final["W_enc"], W_dec=final["W_dec"], b_enc=final["b_enc"], b_dec=final["b_dec"],
        architecture=s.architecture, hook_name=hook_name, head=head, position=position,
        input_scale=scale, metadata=metadata, **extras,
    )


StepFn = Callable[[dict[str, Tensor], Tensor, Tensor], tuple[arch.StepOutput, float | None]]


def _step_function(s: TrainSettings) -> StepFn:
    """The per-architecture ``(params, x [batch, d_in], dead [d_sae]) -> (output, min_kept)``."""
    l1, k = float(s.l1 or 0.0), int(s.k or 0)
    if s.architecture == "relu":
        return lambda p, x, dead: (arch.relu_step(p, x, l1), None)
    if s.architecture == "gated":
        return lambda p, x, dead: (arch.gated_step(p, x, l1), None)
    if s.architecture == "topk":
        return lambda p, x, dead: (arch.topk_step(p, x, k, dead), None)
    if s.architecture == "batchtopk":
        return lambda p, x, dead: arch.batchtopk_step(p, x, k, dead)
    return lambda p, x, dead: (arch.jumprelu_step(p, x, l1), None)
