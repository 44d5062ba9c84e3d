"""Issue 16 on ioi-tiny: DiffMean at scale 1 is the supervised edit; what is learned depends on
fit prompts only; the fast differentiable forward equals the hook-based one; the learned
parameters come back from the cache."""

from __future__ import annotations

import pytest
import torch

from sae_bench.baselines import run as baselines_run
from sae_bench.baselines.diffmean import diffmean_edit
from sae_bench.baselines.editset import PREFER_S, eval_edit_set, fit_edit_set
from sae_bench.baselines.forward import end_logits, runner_end_logits
from sae_bench.baselines.objective import Settings
from sae_bench.baselines.scaling import train_scaling
from sae_bench.engine.cache import DictionaryCache
from sae_bench.engine.context import EvalContext
from sae_bench.models.registry import load_model
from sae_bench.progress import Progress
from sae_bench.tasks import get_task
from sae_bench.truth.reference import supervised_edit


@pytest.fixture(scope="module")
def model():
    return load_model("ioi-tiny")


def make_ctx(model, cache_dir, n_eval=200):
    return EvalContext(model=model, model_name="ioi-tiny", task=get_task("ioi"), seed=0,
                       n_fit=2000, n_eval=n_eval, cache=DictionaryCache(cache_dir),
                       progress=Progress(enabled=False))


def cross_section(name):
    return next(cs for cs in get_task("ioi").cross_sections("ioi-tiny") if cs.name == name)


@pytest.mark.parametrize("attribute", ["IO", "S"])
def test_diffmean_at_scale_one_is_the_supervised_edit(model, tmp_path, attribute):
    ctx = make_ctx(model, tmp_path)
    cs = cross_section("l0_heads_out")
    eval_set = eval_edit_set(ctx, cs, attribute)
    mean = {n: d["mean"] for n, d in ctx.dictionaries(cs.nodes).items()}
    cf = ctx.eval_data.counterfactuals[attribute]
    one = diffmean_edit(eval_set, mean, 1.0)
    for n in cs.nodes:
        # a + 1·(edit − a): the supervised edit up to float32 rounding
        assert torch.allclose(one[n], mean[n].edit(eval_set.acts[n], attribute, cf.source,
                                                   cf.target), atol=1e-5)
    top = ctx.run_argmax(one)
    assert float((top == eval_set.target).float().mean()) == supervised_edit(ctx, cs,
                                                                             attribute)["mean"]
    # the test can fail: another scale is another edit
    two = diffmean_edit(eval_set, mean, 2.0)
    assert not torch.allclose(two[cs.nodes[0]], one[cs.nodes[0]])


def test_fast_forward_equals_the_hook_reference(model, tmp_path):
    ctx = make_ctx(model, tmp_path, n_eval=40)
    cs = cross_section("late_heads_out")
    acts = ctx.eval_activations(cs.nodes)
    patches = {n: 1.5 * a for n, a in acts.items()}
    rows = torch.arange(40)
    d = ctx.eval_data
    fast = runner_end_logits(ctx.runner, patches, rows)
    ref = end_logits(model, d.tokens, d.positions, list(cs.nodes), lambda r: patches,
                     slice(0, 40))
    assert torch.allclose(fast, ref, atol=1e-4)


def test_learned_parameters_depend_on_fit_prompts_only(model, tmp_path):
    """Other eval prompts, or eval labels scrambled, leave what is learned unchanged."""
    cs = cross_section("late_heads_out")
    settings = Settings(steps=20, batch=64)
    a = make_ctx(model, tmp_path / "a", n_eval=100)
    b = make_ctx(model, tmp_path / "b", n_eval=150)
    b.eval_data  # noqa: B018 (build, then scramble its labels)
    for attr in b.eval_data.attributes.values():
        attr.labels.copy_(attr.labels.flip(0))
    alpha_a = train_scaling(fit_edit_set(a, cs, PREFER_S), settings)
    alpha_b = train_scaling(fit_edit_set(b, cs, PREFER_S), settings)
    assert all(torch.equal(alpha_a[n], alpha_b[n]) for n in cs.nodes)
    # the test can fail: another seed draws other mini-batches, so other scalars
    other = train_scaling(fit_edit_set(a, cs, PREFER_S), Settings(steps=20, batch=64, seed=1))
    assert not all(torch.equal(alpha_a[n], other[n]) for n in cs.nodes)


def test_baselines_are_cached_and_reported_once_per_cross_section(model, tmp_path, monkeypatch):
    cs = cross_section("resid_l0_end")
    monkeypatch.setattr(baselines_run, "Settings",
                        lambda seed=0: Settings(steps=10, batch=64, seed=seed))
    first = baselines_run.control_baselines(make_ctx(model, tmp_path), [cs, cs])
    assert len(first) == 1
    edits = {e.edit: e for e in first[0].edits}
    assert set(edits) == {"IO", "S", "Pos", PREFER_S}
    io = {m.method: m for m in edits["IO"].methods}
    assert not io["steering"].applicable and "name swap" in (io["steering"].reason or "")
    assert {m.method for m in edits["Pos"].methods if m.applicable} == {
        "diffmean_1", "diffmean", "steering", "scaling"}

    def no_training(*args, **kwargs):
        raise AssertionError("trained again although the cache holds the parameters")

    monkeypatch.setattr(baselines_run.steering, "train_steering", no_training)
    monkeypatch.setattr(baselines_run.scaling, "train_scaling", no_training)
    again = baselines_run.control_baselines(make_ctx(model, tmp_path), [cs])
    assert again == first
