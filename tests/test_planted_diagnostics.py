"""Planted SAEs on synthetic activations with known attribute features (METHOD §4):
(a) an SAE whose decoder holds the supervised features reaches the supervised edit at k <= 2;
(b) an SAE that splits Pos over 8 latents is flagged with 8 split latents;
(c) an SAE that covers IO names but no S names is flagged for occluding S."""

from __future__ import annotations

import torch

from sae_bench.axes import control
from sae_bench.axes.occlusion import linear_decodability, name_coverage, occlusion
from sae_bench.axes.oversplitting import oversplitting
from sae_bench.sae import SAE
from sae_bench.truth.dictionaries import fit

N_VALUES = {"IO": 30, "S": 30, "Pos": 2}
OFFSETS = {"IO": 0, "S": 30, "Pos": 60}
D = 128


def world(n=4000, seed=0):
    """Orthonormal features per attribute value, a mean direction and 8 'bucket' directions."""
    g = torch.Generator().manual_seed(seed)
    basis, _ = torch.linalg.qr(torch.randn(D, 62 + 1 + 8, generator=g))
    io = torch.randint(30, (n,), generator=g)
    labels = {"IO": io, "S": (io + 1 + torch.randint(29, (n,), generator=g)) % 30,
              "Pos": torch.randint(2, (n,), generator=g)}
    mean_dir = basis[:, 62] * 3.0
    acts = mean_dir + sum(basis[:, OFFSETS[k] + labels[k]].T for k in N_VALUES)
    return g, basis, labels, mean_dir, acts


def supervised_sae(basis, mean_dir, attrs=("IO", "S", "Pos")):
    """Latents = one per attribute value (encoder = its feature, bias −0.5) plus a ± pair for the
    mean direction."""
    cols = [basis[:, OFFSETS[a]:OFFSETS[a] + N_VALUES[a]] for a in attrs]
    enc = torch.cat(cols, 1)
    unit = mean_dir / mean_dir.norm()
    W_enc = torch.cat([enc, unit[:, None], -unit[:, None]], 1)
    # A value latent fires at 1 − 0.5 = 0.5 on its prompts, so its decoder row is twice the
    # feature; the mean pair fires at ±‖mean‖ along the unit direction.
    W_dec = torch.cat([2 * enc.T, unit[None], -unit[None]], 0)
    b_enc = torch.cat([torch.full((enc.shape[1],), -0.5), torch.zeros(2)])
    return SAE(W_enc=W_enc, W_dec=W_dec, b_enc=b_enc, b_dec=torch.zeros(D),
               architecture="relu")


def test_a_supervised_decoder_reaches_the_supervised_edit_with_two_latents():
    g, basis, labels, mean_dir, acts = world()
    target = (labels["IO"] + 7) % 30
    cf_acts = acts - basis[:, labels["IO"]].T + basis[:, target].T  # the IO-edited prompts
    dictionary = fit(acts, labels, N_VALUES, "mean")
    supervised = dictionary.edit(acts, "IO", labels["IO"], target)
    sae = supervised_sae(basis, mean_dir)
    alpha, beta = sae.encode(acts), sae.encode(cf_acts)
    dirs = sae.decoder_directions()
    order = control.greedy_order(alpha, beta, dirs, cf_acts - acts)
    two = control.greedy_edit(acts, alpha, beta, dirs, order, 2)
    one = control.greedy_edit(acts, alpha, beta, dirs, order, 1)
    # Two latents (remove the old IO, add the new one) give exactly the counterfactual
    # activation, which the supervised edit also reaches up to its fitting noise.
    assert torch.allclose(two, cf_acts, atol=1e-4)
    assert (two - supervised).abs().max() < 0.15
    assert (one - cf_acts).norm(dim=1).min() > 0.5, "one latent cannot do it"
    assert set(order[:, :2].flatten().tolist()) <= set(range(30))  # only IO latents chosen


def test_b_pos_split_over_eight_latents_is_flagged():
    g, basis, labels, mean_dir, acts = world()
    pos0 = labels["Pos"] == 0
    bucket = torch.arange(len(acts)) % 8
    buckets = basis[:, 63:71]
    acts = acts + buckets[:, bucket].T * pos0[:, None]  # each Pos=0 prompt carries one bucket
    # Latent i fires only when Pos=ABB and bucket i are both present: a disjoint eighth each.
    W_enc = basis[:, 60:61] + buckets
    sae = SAE(W_enc=W_enc, W_dec=W_enc.T.contiguous() / 2, b_enc=torch.full((8,), -1.5),
              b_dec=torch.zeros(D), architecture="relu")
    reports = {r.value: r for r in oversplitting(sae.encode(acts), labels["Pos"],
                                                 ("ABB", "BAB"), "Pos")}
    abb = reports["ABB"]
    assert abb.split and abb.count == 8 and sorted(abb.latents) == list(range(8))
    assert abb.union_recall == 1.0 and abb.best_single_recall < 0.2
    assert abb.mean_pairwise_jaccard == 0.0
    assert not reports["BAB"].split and reports["BAB"].count == 0


def test_c_sae_without_s_latents_occludes_s():
    g, basis, labels, mean_dir, acts = world()
    io_only = supervised_sae(basis, mean_dir, attrs=("IO", "Pos"))
    latents = io_only.encode(acts)
    train, test = slice(0, 3000), slice(3000, None)
    coverages = {a: name_coverage(latents, labels[a], 30) for a in ("IO", "S")}
    decodable = {a: linear_decodability(acts[train], labels[a][train], acts[test],
                                        labels[a][test], 30) for a in ("IO", "S")}
    assert coverages == {"IO": 1.0, "S": 0.0}
    assert decodable["S"] > 0.95
    # The paper's case: removing either name's feature moves the LD by ~0.5 of a clean ~3.3.
    paper = {"IO": 0.5 / 3.3, "S": 0.5 / 3.3}
    verdicts = {v.attribute: v for v in occlusion(coverages, paper, decodable)}
    assert verdicts["S"].occluded and verdicts["S"].occluded_by == "IO"
    assert not verdicts["IO"].occluded
    # Not flagged when S does not matter causally at the node.
    verdicts = {v.attribute: v for v in occlusion(coverages, {"IO": 0.5, "S": 0.02}, decodable)}
    assert not verdicts["S"].occluded
