"""ioi-planted: the hand-set circuit does what its model card says, found by the same patching
and attention measurements the trained models are checked with."""

from __future__ import annotations

import pytest
import torch

from sae_bench.models.ioi_circuit.circuit import classify, cross_section_effects, head_stats
from sae_bench.models.ioi_planted import build as planted
from sae_bench.models.ioi_planted.model import load, tokenizer
from sae_bench.models.registry import load_model
from sae_bench.tasks import get_task
from sae_bench.tasks.ioi.circuits import cross_sections_for


@pytest.fixture(scope="module")
def model():
    return load()


@pytest.fixture(scope="module")
def data(model):
    return get_task("ioi").build(model, n=120, seed=3, split="eval")


def end_logits(model, tokens) -> torch.Tensor:
    with torch.no_grad():
        return model(tokens)[:, -1]


def test_build_is_deterministic_and_seeded():
    a, b, c = load(seed=0), load(seed=0), load(seed=1)
    for name, p in a.state_dict().items():
        assert torch.equal(p, b.state_dict()[name]), name
    assert not torch.equal(a.W_E, c.W_E)


def test_rotation_changes_the_basis_not_the_function(model, data):
    plain = planted.build(tokenizer(), seed=0, rotated=False)
    assert torch.allclose(end_logits(plain, data.tokens), end_logits(model, data.tokens),
                          atol=1e-3)
    # Rotated: no residual-stream variable sits on a basis axis (an SAE must find it).
    assert model.W_E.abs().max() < 0.5 * plain.W_E.abs().max()


def test_name_codes_stay_below_the_sink():
    codes = planted.name_codes(torch.Generator().manual_seed(0))
    cos = codes @ codes.T
    cos.fill_diagonal_(0.0)
    # A non-repeated name must rest on BOS rather than on a similar name (duplicate-token head).
    assert float(cos.abs().max()) < planted.SINK - 0.3


def test_solves_the_task_through_the_planted_heads(model, data):
    logits = end_logits(model, data.tokens)
    rows = torch.arange(len(logits))
    assert (logits.argmax(-1) == data.answer_ids).float().mean() == 1.0
    assert (logits[rows, data.answer_ids] - logits[rows, data.distractor_ids]).mean() >= 3
    classes = classify(head_stats(model, data))
    assert classes["name_mover"] == ((2, 0), (2, 1))
    assert classes["s_inhibition"] == ((1, 0), (1, 1))
    assert classes["duplicate_token"] == ((0, 0),)


def test_patching_finds_io_s_and_pos_where_they_were_planted(model, data):
    effects = cross_section_effects(model, data, cross_sections_for("ioi-planted"))
    flips = {cs: {a: f for a, (f, _) in row.items()} for cs, row in effects.items()}
    drops = {cs: {a: d for a, (_, d) in row.items()} for cs, row in effects.items()}
    assert flips["bnm_out"]["IO"] == 1.0 and flips["bnm_out"]["Pos"] == 0.0
    for cs in ("si_out", "ind_dt_out", "bnm_q"):  # Pos flips the answer there
        assert flips[cs]["Pos"] == 1.0 and flips[cs]["IO"] == 0.0
    # S is relevant at the S-inhibition outputs (name mover 2.1's share) without flipping.
    assert flips["si_out"]["S"] == 0.0 and 0.3 < drops["si_out"]["S"] < 0.5
    assert abs(drops["ind_dt_out"]["S"]) < 0.01  # the duplicate-token head moves position only


def test_registered_like_the_other_models():
    assert load_model("ioi-planted").cfg.d_model == planted.D_MODEL
    assert [cs.name for cs in cross_sections_for("ioi-planted")][0] == "bnm_out"


def test_io_route_finds_the_name_movers_reading_io_at_its_own_position():
    """The diagnostic behind the ioi-circuit model card's "IO route": on the hand-set circuit
    the IO name reaches END from IO's position (read by the layer-2 name movers)."""
    from sae_bench.models.ioi_circuit.io_route import io_route
    from sae_bench.models.registry import load_model
    from sae_bench.tasks import get_task

    model = load_model("ioi-planted")
    data = get_task("ioi").build(model, n=60, seed=3, split="eval")
    route = io_route(model, data)
    assert route[("IO", 0)][:2] == [1.0, 1.0] and route[("END", 0)][-1] == 1.0
    assert all(v == 0.0 for key in (("S1", 0), ("S2", 0), ("IO", 1)) for v in route[key])
    # The name movers attend IO itself from END, not the token after it.
    from sae_bench.models.ioi_circuit.io_route import end_attention
    attention = end_attention(model, data)
    for head in ((2, 0), (2, 1)):
        assert attention[head][("IO", 0)] > 0.9 > 0.05 > attention[head][("IO", 1)]
    # Spans patched whole: the name is in the opening until the last layer reads it, never in
    # the closing (a model that passed it through the closing would show it there).
    from sae_bench.models.ioi_circuit.io_route import io_route_regions
    regions = io_route_regions(model, data)
    assert regions == {"up to S2": [1.0, 1.0, 0.0], "S2 to END": [0.0, 0.0, 0.0]}
    # Each name mover's most attended token from END is the prompt's IO name.
    from sae_bench.models.ioi_circuit.io_route import most_attended
    tops = most_attended(model, data, n_prompts=3)
    io_names = [model.to_single_str_token(int(data.tokens[i, data.positions["IO"][i]]))
                for i in range(3)]
    for head in ((2, 0), (2, 1)):
        assert [tok for tok, _ in tops[head]] == io_names
        assert all(w > 0.9 for _, w in tops[head])
