"""Issue 10's fidelity points end to end on ioi-tiny: planted SAEs whose right scores are known."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from helpers import identity_sae

from sae_bench.axes.supervised_codes import residual_precision
from sae_bench.engine.cache import DictionaryCache
from sae_bench.engine.context import EvalContext
from sae_bench.evaluate import pipeline as evaluate_module
from sae_bench.evaluate.pipeline import evaluate, resolve_units
from sae_bench.models.nodes import Node
from sae_bench.models.registry import load_model
from sae_bench.progress import Progress
from sae_bench.sae import SAE, load_sae
from sae_bench.tasks import get_task

MAIN = "blocks.0.hook_resid_post"
LATE = "blocks.2.hook_resid_post"


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    return EvalContext(
        model=load_model("ioi-tiny"), model_name="ioi-tiny", task=get_task("ioi"), seed=0,
        n_fit=8000, n_eval=500, cache=DictionaryCache(tmp_path_factory.mktemp("cache")),
        progress=Progress(enabled=False),
    )


def score(ctx, sae):
    (unit,) = evaluate(ctx, resolve_units(ctx, sae))
    return unit


def io_only_sae(ctx, hook: str) -> SAE:
    """TopK(k=1) SAE with one latent per IO name: its pre-activation is the supervised
    dictionary's maximum-likelihood score for that name (see axes/supervised_codes.py), so the
    latent that fires is the decoded IO name. It has no S latents at all."""
    node = Node(hook, "END")
    d = ctx.dictionaries([node])[node][ctx.comparator]
    prec = residual_precision(d, ctx.fit_activations([node])[node], ctx.fit_data.labels).float()
    u = d.features["IO"] - d.features["IO"].mean(0)
    w = u @ prec
    offset = 1e3  # keeps the winning pre-activation positive
    return SAE(W_enc=w.T.contiguous(), W_dec=(u / offset).contiguous(),
               b_enc=offset - 0.5 * (w * u).sum(1), b_dec=d.mean.clone(), architecture="topk",
               k=1, hook_name=hook, position="END")


def test_s_hidden_behind_io_at_the_layer_2_residual_is_flagged(ctx):
    """Removing S's feature at blocks.2.hook_resid_post@END moves the LD by ~40% of clean, yet it
    flips no prediction: the old top-1 gate could never flag it."""
    unit = score(ctx, io_only_sae(ctx, LATE))
    (node,) = unit.per_node
    occ = node.occlusion
    assert occ["coverage05_IO"].value >= 0.8 and occ["coverage05_S"].value < 0.2
    # the supervised dictionary, decoded the same way, covers both
    assert occ["coverage05_S"].supervised >= 0.8 and occ["occluded_S"].supervised == 0.0
    assert occ["ld_effect_S"].value >= 0.1 and occ["decodability_S"].value >= 0.8
    assert occ["occluded_S"].value == 1.0 and occ["occluded_IO"].value == 0.0
    (s_verdict,) = [o for o in node.occlusion_details if o.attribute == "S"]
    assert s_verdict.occluded_by == "IO" and "occluded by IO" in s_verdict.evidence
    # Dead latents are counted on the fit prompts, which hold every name: each IO latent fires
    # there, while on the eval prompts (half of the names) half of them would look dead.
    assert node.approximation["dead_fraction"].value < 0.05


def test_a_reflected_reconstruction_recovers_a_negative_share(ctx):
    """x̂ = 2·mean − x reverses the model's answer: LD recovered must be below 0, not ≈ 1."""
    node = Node(LATE, "END")
    mean = ctx.dictionaries([node])[node][ctx.comparator].mean
    eye = torch.eye(len(mean))
    reflect = SAE(W_enc=torch.cat([eye, -eye], 1), W_dec=torch.cat([-eye, eye], 0),
                  b_enc=torch.zeros(2 * len(mean)), b_dec=mean.clone(), architecture="relu",
                  hook_name=LATE, position="END")
    unit = score(ctx, reflect)
    assert unit.approximation["logit_diff_recovered"].value < -0.5
    assert unit.approximation["sufficiency"].value < 0


def test_sweep_that_keeps_every_latent_is_mean_ablation(ctx, monkeypatch):
    """Mean-ablating every latent of the exact identity SAE (to its fit-prompt mean) is mean
    ablation, so necessity is 1, as the identity SAE's own necessity is."""
    monkeypatch.setattr(evaluate_module, "SWEEP_THRESHOLDS", (0.0, 0.6))
    unit = score(ctx, identity_sae(128, MAIN))
    everything = unit.causal_sweep[0]
    assert everything.threshold == 0.0 and everything.latents_kept_fraction == 1.0
    assert everything.necessity_removed == pytest.approx(1.0, abs=1e-4)
    assert unit.approximation["necessity"].value == pytest.approx(1.0, abs=1e-4)
    assert everything.sufficiency_kept == pytest.approx(1.0, abs=1e-5)


def _values(unit) -> dict[str, float | None]:
    out = {}
    for name, cat in (("unit", unit.approximation), ("unit_i", unit.interpretability),
                      ("control", unit.control)):
        out.update({f"{name}.{k}": m.value for k, m in cat.items()})
    for n in unit.per_node:
        for name, cat in (("a", n.approximation), ("i", n.interpretability),
                          ("o", n.occlusion), ("s", n.oversplitting)):
            out.update({f"{name}.{k}": m.value for k, m in cat.items()})
    for p in unit.causal_sweep:
        out.update({f"sweep{p.threshold}.{k}": v for k, v in p.model_dump().items()})
    return out


def test_scores_are_invariant_to_rescaling_and_permuting_latents(ctx):
    """Each latent scaled by its own c (and its decoder row by 1/c), then the latents permuted:
    the reconstructions are the same, so every score must be."""
    sae = load_sae("reports/ioi-tiny/saes/relu-l1_3-task.safetensors")
    g = torch.Generator().manual_seed(0)
    c = torch.rand(sae.d_sae, generator=g) * 3 + 0.25
    perm = torch.randperm(sae.d_sae, generator=g)
    other = dataclasses.replace(sae, W_enc=(sae.W_enc * c)[:, perm], b_enc=(sae.b_enc * c)[perm],
                                W_dec=(sae.W_dec / c[:, None])[perm], sha256=None)
    base = _values(score(ctx, sae))
    values = _values(score(ctx, other))
    assert values.keys() == base.keys()
    for k, v in base.items():
        if v is None:
            assert values[k] is None, k
        else:
            assert values[k] == pytest.approx(v, abs=2e-4), k
