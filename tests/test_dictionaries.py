"""Supervised dictionary maths on synthetic activations with planted attribute features."""

from __future__ import annotations

import pytest
import torch

from sae_bench.engine.cache import DictionaryCache
from sae_bench.errors import UserError
from sae_bench.truth.dictionaries import fit

N_VALUES = {"IO": 12, "S": 12, "Pos": 2}


def planted(n=6000, d=16, noise=0.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    labels = {k: torch.randint(v, (n,), generator=g) for k, v in N_VALUES.items()}
    mean = torch.randn(d, generator=g)
    feats = {}
    for k, v in N_VALUES.items():
        f = torch.randn(v, d, generator=g)
        feats[k] = f - f.mean(0)  # centred per attribute, so ā ≈ mean under uniform labels
    acts = mean + sum(feats[k][labels[k]] for k in N_VALUES)
    acts = acts + noise * torch.randn(n, d, generator=g)
    return acts, labels, mean, feats


def test_lstsq_reconstructs_additive_activations_exactly():
    acts, labels, _, _ = planted()
    d = fit(acts, labels, N_VALUES, "lstsq")
    assert torch.allclose(d.reconstruct(labels), acts, atol=1e-4)


def test_mean_features_recover_planted_features():
    acts, labels, _, feats = planted(n=40000)
    d = fit(acts, labels, N_VALUES, "mean")
    for k in N_VALUES:
        # differences between values are identified; sampling noise from the other attributes
        # shrinks as 1/sqrt(n per value)
        got = d.features[k] - d.features[k][0]
        want = feats[k] - feats[k][0]
        assert (got - want).abs().max() < 0.15, k
    recon = d.reconstruct(labels)
    fvu = ((recon - acts) ** 2).sum() / ((acts - acts.mean(0)) ** 2).sum()
    assert fvu < 1e-3


def test_mean_feature_is_class_mean_minus_grand_mean():
    acts, labels, _, _ = planted(n=500, noise=0.5)
    d = fit(acts, labels, N_VALUES, "mean")
    sel = labels["IO"] == 3
    assert torch.allclose(d.mean, acts.mean(0), atol=1e-5)
    assert torch.allclose(d.features["IO"][3], acts[sel].mean(0) - acts.mean(0), atol=1e-5)


@pytest.mark.parametrize("method", ["mean", "lstsq"])
def test_edit_moves_an_attribute(method):
    acts, labels, _, feats = planted(n=20000)
    d = fit(acts, labels, N_VALUES, method)
    target = (labels["IO"] + 1) % N_VALUES["IO"]
    edited = d.edit(acts, "IO", labels["IO"], target)
    moved = {**labels, "IO": target}
    # The edited activation is what the planted generator makes for the edited labels.
    expected = acts - feats["IO"][labels["IO"]] + feats["IO"][target]
    assert (edited - expected).abs().max() < (0.2 if method == "mean" else 1e-3)
    assert torch.allclose(d.reconstruct(moved), d.edit(d.reconstruct(labels), "IO", labels["IO"],
                                                       target), atol=1e-4)


def test_unseen_value_is_reported():
    acts, labels, _, _ = planted(n=300)
    labels["IO"] = labels["IO"].clamp(max=10)  # value 11 never seen
    d = fit(acts, labels, N_VALUES, "mean")
    assert not bool(d.present["IO"][11])
    with pytest.raises(UserError, match="never occurred"):
        d.reconstruct({**labels, "IO": torch.full_like(labels["IO"], 11)})


def test_cache_round_trip_and_corrupt_entry(tmp_path):
    acts, labels, _, _ = planted(n=300)
    d = fit(acts, labels, N_VALUES, "lstsq")
    cache = DictionaryCache(tmp_path)
    key = cache.key(model="m", node="n", seed=0)
    assert cache.get(key) is None
    cache.put(key, d, node="n")
    back = cache.get(key)
    assert back is not None and back.method == "lstsq"
    assert torch.equal(back.mean, d.mean)
    for k in N_VALUES:
        assert torch.equal(back.features[k], d.features[k])
        assert torch.equal(back.present[k], d.present[k])
    # A truncated entry is ignored (recomputed), never trusted.
    path = next((tmp_path / "dictionaries").glob("*.safetensors"))
    path.write_bytes(path.read_bytes()[:100])
    assert cache.get(key) is None
    assert cache.key(model="m", node="n", seed=0) != cache.key(model="m", node="n", seed=1)
