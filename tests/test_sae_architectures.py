"""Encode/decode of every architecture against hand computations on tiny examples."""

from __future__ import annotations

import pytest
import torch

from sae_bench.errors import UserError
from sae_bench.models.nodes import Node
from sae_bench.sae import ARCHITECTURES, SAE

HOOK = "blocks.0.hook_resid_post"


def identity_sae(d_in: int = 3, **kwargs) -> SAE:
    """The exact-identity ReLU SAE: W_enc = [I, -I], W_dec = [I; -I], zero biases."""
    eye = torch.eye(d_in)
    return SAE(
        W_enc=torch.cat([eye, -eye], dim=1),
        W_dec=torch.cat([eye, -eye], dim=0),
        b_enc=torch.zeros(2 * d_in),
        b_dec=torch.zeros(d_in),
        architecture="relu",
        hook_name=HOOK,
        **kwargs,
    )


def tiny(architecture: str, **extras) -> SAE:
    """d_in=2, d_sae=3 SAE with easy numbers: W_enc columns e1, e2, e1+e2."""
    return SAE(
        W_enc=torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]]),
        W_dec=torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]]),
        b_enc=torch.tensor([0.0, -1.0, 0.5]),
        b_dec=torch.tensor([1.0, 1.0]),
        architecture=architecture,
        hook_name=HOOK,
        **extras,
    )


def test_architecture_names() -> None:
    assert set(ARCHITECTURES) == {"relu", "gated", "topk", "batchtopk", "jumprelu"}


def test_identity_relu_reconstructs_exactly() -> None:
    sae = identity_sae(4)
    x = torch.randn(7, 5, 4)
    assert torch.equal(sae(x), x)
    assert torch.equal(sae.decode(sae.encode(x)), x)
    # Positive parts in the first half of the latents, negative parts in the second.
    f = sae.encode(torch.tensor([2.0, -3.0, 0.0, 1.0]))
    assert f.tolist() == [2.0, 0.0, 0.0, 1.0, 0.0, 3.0, 0.0, 0.0]


def test_relu_hand_computation_subtracts_b_dec() -> None:
    sae = tiny("relu")
    # x - b_dec = [2, 0] -> pre = [2, 0, 2] + [0, -1, 0.5] = [2, -1, 2.5]
    f = sae.encode(torch.tensor([3.0, 1.0]))
    assert f.tolist() == [2.0, 0.0, 2.5]
    # decode: 2*[1,0] + 2.5*[0.5,0.5] + b_dec = [3.25, 1.25] + [1, 1]
    assert sae.decode(f).tolist() == [4.25, 2.25]


def test_relu_without_input_centring() -> None:
    sae = tiny("relu", apply_b_dec_to_input=False)
    # pre = [3, 1, 4] + [0, -1, 0.5] = [3, 0, 4.5]
    assert sae.encode(torch.tensor([3.0, 1.0])).tolist() == [3.0, 0.0, 4.5]


def test_topk_keeps_k_largest_of_relu() -> None:
    sae = tiny("topk", k=2)
    # pre = [2, -1, 2.5] -> top-2 of ReLU: latents 2 and 0
    assert sae.encode(torch.tensor([3.0, 1.0])).tolist() == [2.0, 0.0, 2.5]
    sae1 = tiny("topk", k=1)
    assert sae1.encode(torch.tensor([3.0, 1.0])).tolist() == [0.0, 0.0, 2.5]
    # All pre-activations negative: top-k of ReLU keeps nothing (same as SAELens' ReLU(topk)).
    # x - b_dec = [-5, -5] -> pre = [-5, -6, -9.5]
    assert sae.encode(torch.tensor([-4.0, -4.0])).tolist() == [0.0, 0.0, 0.0]


def test_batchtopk_uses_threshold_on_relu() -> None:
    sae = tiny("batchtopk", threshold=torch.tensor([2.0, 0.0, 2.0]), k=2)
    # ReLU(pre) = [2, 0, 2.5]; a > θ keeps only latent 2 (2 > 2 is false)
    assert sae.encode(torch.tensor([3.0, 1.0])).tolist() == [0.0, 0.0, 2.5]
    assert sae.k == 2


def test_scalar_threshold_is_broadcast() -> None:
    sae = tiny("batchtopk", threshold=torch.tensor(1.0))
    assert sae.threshold is not None and sae.threshold.shape == (3,)
    assert sae.encode(torch.tensor([3.0, 1.0])).tolist() == [2.0, 0.0, 2.5]


def test_jumprelu_hand_computation() -> None:
    sae = tiny("jumprelu", threshold=torch.tensor([2.0, -2.0, 1.0]))
    # pre = [2, -1, 2.5]: latent 0 at the threshold is off (strict >); latent 1 passes its
    # negative threshold but ReLU keeps it at 0 (as SAELens and dictionary_learning do).
    assert sae.encode(torch.tensor([3.0, 1.0])).tolist() == [0.0, 0.0, 2.5]
    sae_low = tiny("jumprelu", threshold=torch.tensor([1.9, 0.0, 3.0]))
    assert sae_low.encode(torch.tensor([3.0, 1.0])).tolist() == [2.0, 0.0, 0.0]


def test_gated_hand_computation() -> None:
    r_mag = torch.tensor([0.0, 0.0, float(torch.log(torch.tensor(2.0)))])
    sae = tiny("gated", r_mag=r_mag, b_mag=torch.tensor([-1.0, 5.0, 0.0]))
    # u = (x - b_dec) @ W_enc = [2, 0, 2]; π_gate = u + b_gate = [2, -1, 2.5] -> gate [1, 0, 1]
    # π_mag = u * exp(r_mag) + b_mag = [2 - 1, 0 + 5, 4 + 0] = [1, 5, 4]
    f = sae.encode(torch.tensor([3.0, 1.0]))
    assert torch.allclose(f, torch.tensor([1.0, 0.0, 4.0]))
    assert torch.equal(sae.b_gate, sae.b_enc)


def test_input_scale_is_applied_and_undone() -> None:
    s = 0.25
    sae = tiny("relu", input_scale=s)
    x = torch.tensor([12.0, 4.0])  # x * s = [3, 1] -> same latents as the unscaled example
    f = sae.encode(x)
    assert f.tolist() == [2.0, 0.0, 2.5]
    assert torch.allclose(sae.decode(f), torch.tensor([4.25, 2.25]) / s)
    assert torch.allclose(sae.decoder_directions(), sae.W_dec / s)
    assert torch.allclose(sae.output_bias, sae.b_dec / s)
    assert torch.allclose(sae.normalize(x), x * s) and torch.allclose(sae.denormalize(x), x / s)
    scaled_identity = identity_sae(3, input_scale=3.0)
    x = torch.randn(4, 3)
    assert torch.allclose(scaled_identity(x), x)


def test_unit_decoder_directions() -> None:
    sae = tiny("relu")
    unit = sae.decoder_directions(unit=True)
    assert torch.allclose(unit.norm(dim=-1), torch.ones(3))


def test_batched_inputs_keep_leading_dims() -> None:
    sae = tiny("topk", k=1)
    x = torch.randn(2, 5, 2)
    assert sae.encode(x).shape == (2, 5, 3)
    assert sae(x).shape == (2, 5, 2)


def test_check_width() -> None:
    sae = tiny("relu")
    sae.check_width(2, "blocks.0.hook_resid_post@END")
    with pytest.raises(UserError, match=r"d_in=2 but node .*@END has width 4"):
        sae.check_width(4, "blocks.0.hook_resid_post@END")


def test_encode_rejects_wrong_width() -> None:
    with pytest.raises(UserError, match=r"last dimension must be d_in=2"):
        tiny("relu").encode(torch.zeros(3))
    with pytest.raises(UserError, match=r"must be d_sae=3"):
        tiny("relu").decode(torch.zeros(2))


def test_properties_replace_and_to() -> None:
    sae = tiny("relu", position="END")
    assert (sae.d_in, sae.d_sae) == (2, 3)
    assert sae.node == Node(hook=HOOK, position="END")
    moved = sae.replace(position="S2")
    assert moved.position == "S2" and sae.position == "END"
    doubled = sae.to(dtype=torch.float64)
    assert doubled.dtype == torch.float64 and doubled.W_dec.dtype == torch.float64
    assert doubled.encode(torch.tensor([3.0, 1.0])).dtype == torch.float64
    with pytest.raises(AttributeError):
        sae.hook_name = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        sae.metadata["x"] = 1  # type: ignore[index]
    assert "relu" in repr(sae) and "d_sae=3" in repr(sae)
