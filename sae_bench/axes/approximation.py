"""Approximation axis (METHOD §4): are reconstructions sufficient and necessary for the model's
behaviour? All logit differences (LD) are means over eval prompts, with every node of a
cross-section patched in one pass.
"""

from __future__ import annotations

import torch

# Necessity and LD recovered are ratios over |LD_clean − LD_MA|. When mean-ablating the nodes
# moves the LD by less than this share of |LD_clean|, the ratio is numerical noise (e.g. ioi-tiny's
# residual stream at S2: a gap of 0.003 turns float rounding into a 3e-4 necessity error and the
# supervised necessity into −4.8), so they are reported as null with a reason (**choice**).
MIN_ABLATION_GAP = 0.05


def ablation_gap_ok(ld_mean_ablation: torch.Tensor, ld_clean: torch.Tensor) -> bool:
    gap = abs(float(ld_clean.mean()) - float(ld_mean_ablation.mean()))
    return gap >= MIN_ABLATION_GAP * abs(float(ld_clean.mean()))


def ill_conditioned_reason(ld_mean_ablation: torch.Tensor, ld_clean: torch.Tensor) -> str:
    gap = abs(float(ld_clean.mean()) - float(ld_mean_ablation.mean()))
    return (f"mean-ablating these nodes moves the mean LD by only {gap:.3g} "
            f"(< {MIN_ABLATION_GAP:.0%} of the clean LD): the nodes barely matter, so the ratio "
            "is not meaningful")


def sufficiency(ld_reconstruction: torch.Tensor, ld_clean: torch.Tensor) -> float:
    """mean LD(â) / mean LD(clean). 1 is best: the reconstruction alone drives the behaviour."""
    return float(ld_reconstruction.mean() / ld_clean.mean())


def necessity(
    ld_mean_ablation: torch.Tensor, ld_without: torch.Tensor, ld_clean: torch.Tensor
) -> float:
    """1 − |LD_MA − LD(ā + a − â)| / |LD_MA − LD_clean|. 1 is best: removing the reconstruction
    (keeping only the error term around the mean) hurts exactly as much as mean ablation."""
    ma, without, clean = (float(x.mean()) for x in (ld_mean_ablation, ld_without, ld_clean))
    return 1.0 - abs(ma - without) / abs(ma - clean)


def logit_diff_recovered(
    ld_patched: torch.Tensor, ld_mean_ablation: torch.Tensor, ld_clean: torch.Tensor
) -> float:
    """(LD_patched − LD_MA) / (LD_clean − LD_MA): the share of the clean-vs-ablated gap kept.

    Signed on purpose: a patch that pushes the LD past the mean-ablation level, away from clean
    (e.g. a reconstruction that reverses the model's answer), scores below 0. The absolute form
    |LD_patched − LD_MA| / |LD_clean − LD_MA| is symmetric around LD_MA and scores such a patch
    like a perfect one."""
    patched, ma, clean = (float(x.mean()) for x in (ld_patched, ld_mean_ablation, ld_clean))
    return (patched - ma) / (clean - ma)


def without_reconstruction(
    acts: torch.Tensor, reconstruction: torch.Tensor, mean: torch.Tensor
) -> torch.Tensor:
    """ā + a − â [n, d]: the activation with its reconstruction swapped for the mean."""
    return mean + acts - reconstruction


def fvu(acts: torch.Tensor, reconstruction: torch.Tensor) -> float:
    """Fraction of variance unexplained: Σ‖a − â‖² / Σ‖a − mean(a)‖² over prompts [n, d]."""
    resid = ((acts - reconstruction) ** 2).sum()
    total = ((acts - acts.mean(0)) ** 2).sum()
    return float(resid / total)


def l0(latents: torch.Tensor) -> float:
    """Mean number of active latents per prompt (latents [n, d_sae])."""
    return float((latents != 0).sum(1).float().mean())


def dead_fraction(latents: torch.Tensor) -> float:
    """Share of latents that never fire on any prompt. Pass prompts that contain every attribute
    value (IOI: the fit prompts): on eval prompts, which hold half of the names, a latent for a
    name of the other half looks dead."""
    return float(((latents != 0).sum(0) == 0).float().mean())


def shrinkage_pooled(acts: torch.Tensor, reconstruction: torch.Tensor) -> float:
    """γ = Σ‖â‖² / Σ â·a over prompts (the Gated-SAE paper's form; SAELens and dictionary_learning
    report the same). Dominated by the shared mean when ‖mean‖ is large, so it understates
    shrinkage of the deviations that carry the task's information."""
    return float((reconstruction**2).sum() / (reconstruction * acts).sum())


def shrinkage(acts: torch.Tensor, reconstruction: torch.Tensor) -> float:
    """Centred γ = Σ‖â − ā‖² / Σ (â − ā)·(a − ā), with ā the mean of `acts` over the prompts.

    Measures how the SAE scales the *deviations* from the mean: â = ā + c(a − ā) gives exactly c,
    whatever ‖ā‖ is (the pooled form gives a value between c and 1). γ < 1: shrinkage."""
    mean = acts.mean(0)
    dev_hat = reconstruction - mean
    return float((dev_hat**2).sum() / (dev_hat * (acts - mean)).sum())


def directional_shrinkage(
    acts: torch.Tensor, reconstruction: torch.Tensor, mean: torch.Tensor, directions: torch.Tensor
) -> torch.Tensor:
    """γ along each direction [k, d] (e.g. supervised features), centred on the dictionary mean ā
    so the large shared mean does not dominate: E[(û·(â−ā))²] / E[(û·(â−ā))(û·(a−ā))] → [k]."""
    unit = directions / directions.norm(dim=1, keepdim=True).clamp(min=1e-12)
    proj_hat = (reconstruction - mean) @ unit.T  # [n, k]
    proj = (acts - mean) @ unit.T
    return (proj_hat**2).sum(0) / (proj_hat * proj).sum(0)
