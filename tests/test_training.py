"""Reference-SAE trainer: every architecture recovers a planted sparse dictionary (FVU and L0
measured through the inference path `SAE.encode/decode`), determinism, input_scale round trip,
and dead-latent resampling."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from sae_bench.sae import load_sae, save_native
from sae_bench.training import TrainSettings, train_sae

D_IN, N_TRUE, D_SAE, STEPS = 32, 64, 128, 400


def planted(n: int = 4096, seed: int = 0) -> torch.Tensor:
    """``[n, D_IN]``: each row a sum of 3 of 64 unit directions with magnitudes in [0.5, 1.5),
    scaled by 5 and offset, so the trainer's normalisation and b_dec both have work to do."""
    g = torch.Generator().manual_seed(seed)
    dirs = torch.randn(N_TRUE, D_IN, generator=g)
    dirs = dirs / dirs.norm(dim=-1, keepdim=True)
    idx = torch.rand(n, N_TRUE, generator=g).argsort(-1)[:, :3]
    codes = torch.zeros(n, N_TRUE).scatter(-1, idx, 0.5 + torch.rand(n, 3, generator=g))
    return (codes @ dirs) * 5.0 + 0.3


@pytest.fixture(scope="module")
def acts() -> Iterator[torch.Tensor]:
    # Tiny matmuls: one thread is faster and immune to OpenMP spin-waits on a loaded machine.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield planted()
    torch.set_num_threads(threads)


def fvu(sae, x: torch.Tensor) -> float:
    return float((x - sae(x)).pow(2).sum() / (x - x.mean(0)).pow(2).sum())


# (settings, max L0 at inference)
CASES = {
    "relu": (TrainSettings("relu", D_SAE, l1=1.0, steps=STEPS, lr=1e-2), 12.0),
    "gated": (TrainSettings("gated", D_SAE, l1=8.0, steps=STEPS, lr=1e-2), 12.0),
    "topk": (TrainSettings("topk", D_SAE, k=4, steps=STEPS, lr=3e-3), 4.0),
    "batchtopk": (TrainSettings("batchtopk", D_SAE, k=4, steps=STEPS, lr=3e-3), 8.0),
    "jumprelu": (TrainSettings("jumprelu", D_SAE, l1=0.3, steps=STEPS, lr=3e-3), 12.0),
}


@pytest.mark.parametrize("name", list(CASES))
def test_recovers_planted_dictionary(acts: torch.Tensor, name: str, tmp_path) -> None:
    settings, max_l0 = CASES[name]
    sae = train_sae(acts, settings, hook_name="blocks.0.hook_resid_pre", position="END")
    f = sae.encode(acts)
    l0 = (f > 0).float().sum(-1)
    err = fvu(sae, acts)
    print(f"{name}: FVU={err:.3f} L0={float(l0.mean()):.2f}")
    assert err < 0.2
    assert 1.0 <= float(l0.mean()) <= max_l0
    if name == "topk":
        assert int(l0.max()) <= settings.k
    assert sae.metadata["trained_by"] == "sae_bench.training"
    assert sae.metadata["steps"] == STEPS and sae.metadata["settings"]["architecture"] == name
    # The normalisation E‖x·s‖² = d_in is recorded and survives the native format.
    assert float((acts * sae.input_scale).pow(2).sum(-1).mean()) == pytest.approx(D_IN, rel=1e-4)
    loaded = load_sae(save_native(sae, tmp_path / f"{name}.safetensors"))
    assert loaded.input_scale == sae.input_scale
    assert loaded.metadata["trained_by"] == "sae_bench.training"
    torch.testing.assert_close(loaded(acts[:64]), sae(acts[:64]))


@pytest.mark.parametrize("name", ["relu", "batchtopk", "jumprelu"])
def test_deterministic_per_seed(acts: torch.Tensor, name: str) -> None:
    settings = CASES[name][0].__class__(**{**CASES[name][0].__dict__, "steps": 30})
    a, b = train_sae(acts, settings), train_sae(acts, settings)
    assert torch.equal(a.W_enc, b.W_enc) and torch.equal(a.W_dec, b.W_dec)
    assert torch.equal(a.b_enc, b.b_enc) and a.metadata["final_loss"] == b.metadata["final_loss"]
    if a.threshold is not None:
        assert torch.equal(a.threshold, b.threshold)
    other = train_sae(acts, settings.__class__(**{**settings.__dict__, "seed": 1}))
    assert not torch.equal(a.W_enc, other.W_enc)


def test_relu_resampling_revives_killed_latents(acts: torch.Tensor) -> None:
    b_enc = torch.zeros(D_SAE)
    b_enc[D_SAE // 2:] = -100.0  # these latents can never fire without resampling
    sae = train_sae(acts, CASES["relu"][0], initial={"b_enc": b_enc})
    revived = int((sae.encode(acts)[:, D_SAE // 2:] > 0).any(0).sum())
    assert sae.metadata["n_resampled"] >= D_SAE // 2
    assert revived >= D_SAE // 4
    assert fvu(sae, acts) < 0.2


def test_bad_settings_are_user_errors(acts: torch.Tensor) -> None:
    from sae_bench.errors import UserError

    with pytest.raises(UserError):
        train_sae(acts, TrainSettings("topk", D_SAE))  # no k
    with pytest.raises(UserError):
        train_sae(acts, TrainSettings("relu", D_SAE))  # no l1
    with pytest.raises(UserError):
        train_sae(acts, TrainSettings("relux", D_SAE, l1=1.0))
