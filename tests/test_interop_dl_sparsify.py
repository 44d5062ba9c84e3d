"""Round trips through the real dictionary_learning and sparsify (the `interop` extra), both ways.

dictionary_learning checkpoints are written by the library's own `trainSAE` (a few steps on
random activations, with and without its activation normalisation); sparsify folders by
`SparseCoder.save_to_disk`. Each is loaded here and compared with the library's own
encode/decode; and files our exporter writes are loaded by the libraries' own loaders and
compared the same way. Skipped, with the reason, when a library is not installed.
"""

from __future__ import annotations

import sys
import types

import pytest
import torch

from sae_bench.errors import UserError
from sae_bench.sae import load_sae

D_IN, D_SAE, K = 16, 64, 4
TOL = 2e-5


def batches(n: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    for _ in range(n):
        yield torch.randn(32, D_IN, generator=gen) * 3 + 1


def inputs() -> torch.Tensor:
    return next(batches(1, seed=99))


@pytest.fixture(scope="module")
def dl():
    pytest.importorskip("dictionary_learning",
                        reason="dictionary_learning is not installed; install the interop extra "
                               "(README, 'Interop')")
    # training.py imports wandb at the top but never uses it with use_wandb=False; wandb is not a
    # dependency of the extra, so an empty module stands in for the import only.
    sys.modules.setdefault("wandb", types.ModuleType("wandb"))
    import dictionary_learning.training as training
    from dictionary_learning import trainers
    from dictionary_learning.dictionary import AutoEncoder, GatedAutoEncoder, JumpReluAutoEncoder
    from dictionary_learning.trainers.matryoshka_batch_top_k import (
        MatryoshkaBatchTopKSAE,
        MatryoshkaBatchTopKTrainer,
    )
    from dictionary_learning.trainers.top_k import AutoEncoderTopK

    return types.SimpleNamespace(
        train=training.trainSAE, trainers=trainers, AutoEncoder=AutoEncoder,
        GatedAutoEncoder=GatedAutoEncoder, JumpReluAutoEncoder=JumpReluAutoEncoder,
        AutoEncoderTopK=AutoEncoderTopK, BatchTopKSAE=trainers.BatchTopKSAE,
        Matryoshka=MatryoshkaBatchTopKSAE, MatryoshkaTrainer=MatryoshkaBatchTopKTrainer,
    )


def train(dl, tmp_path, trainer, normalize: bool = False, steps: int = 30, **config):
    base = {"trainer": trainer, "steps": steps, "activation_dim": D_IN, "dict_size": D_SAE,
            "layer": 1, "lm_name": "gpt2", "device": "cpu", "seed": 0,
            "submodule_name": "resid_post_layer_1", **config}
    dl.train(batches(steps + 200), [base], steps=steps, save_dir=str(tmp_path), device="cpu",
             normalize_activations=normalize)
    return tmp_path / "trainer_0"


CASES = {
    "AutoEncoder": ("StandardTrainer", "AutoEncoder", {"warmup_steps": 2,
                                                       "sparsity_warmup_steps": 2}),
    "Gated": ("GatedSAETrainer", "GatedAutoEncoder", {"warmup_steps": 2,
                                                      "sparsity_warmup_steps": 2}),
    "TopK": ("TopKTrainer", "AutoEncoderTopK", {"k": K, "warmup_steps": 2}),
    "BatchTopK": ("BatchTopKTrainer", "BatchTopKSAE", {"k": K, "warmup_steps": 2,
                                                       "threshold_start_step": 5}),
    "JumpRelu": ("JumpReluTrainer", "JumpReluAutoEncoder", {"warmup_steps": 2,
                                                           "sparsity_warmup_steps": 2}),
}


def library_forward(ae, x: torch.Tensor):
    with torch.no_grad():
        f = ae.encode(x)
        return f, ae.decode(f)


@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("case", sorted(CASES))
def test_dictionary_learning_checkpoints_load_exactly(dl, tmp_path, case, normalize):
    trainer_name, dict_name, config = CASES[case]
    folder = train(dl, tmp_path, getattr(dl.trainers, trainer_name), normalize=normalize,
                   **config)
    ae = getattr(dl, dict_name).from_pretrained(str(folder / "ae.pt"), device="cpu")
    ours = load_sae(folder)
    assert ours.metadata["model_processing"]["fold_ln"] is False  # raw HF hidden states
    x = inputs()
    f_ref, recon_ref = library_forward(ae, x)
    assert torch.allclose(ours.encode(x), f_ref, atol=TOL), case
    assert torch.allclose(ours.forward(x), recon_ref, atol=TOL), case


def test_dictionary_learning_matryoshka_loads_exactly(dl, tmp_path):
    folder = train(dl, tmp_path, dl.MatryoshkaTrainer, k=K, group_fractions=[0.25, 0.75],
                   warmup_steps=2, threshold_start_step=5)
    ae = dl.Matryoshka.from_pretrained(str(folder / "ae.pt"), device="cpu")
    ours = load_sae(folder)
    x = inputs()
    f_ref, recon_ref = library_forward(ae, x)
    assert torch.allclose(ours.encode(x), f_ref, atol=TOL)
    assert torch.allclose(ours.forward(x), recon_ref, atol=TOL)


def test_uncalibrated_batchtopk_is_refused(dl, tmp_path):
    """Saved before threshold_start_step, the threshold is the library's −1 placeholder: scoring
    it would score a dense ReLU SAE under a BatchTopK name (issue 12, point 3)."""
    folder = train(dl, tmp_path, dl.trainers.BatchTopKTrainer, k=K, warmup_steps=2,
                   threshold_start_step=1000, steps=10)
    with pytest.raises(UserError, match="threshold was never calibrated"):
        load_sae(folder)


@pytest.fixture(scope="module")
def sparsify():
    return pytest.importorskip("sparsify", reason="sparsify (eai-sparsify) is not installed; "
                                                  "install the interop extra (README, 'Interop')")


@pytest.mark.parametrize("normalize_decoder", [True, False])
def test_sparsify_folders_load_exactly(sparsify, tmp_path, normalize_decoder):
    cfg = sparsify.SparseCoderConfig(num_latents=D_SAE, k=K, normalize_decoder=normalize_decoder)
    coder = sparsify.SparseCoder(D_IN, cfg)
    gen = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for p in coder.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
    folder = tmp_path / "layers.1"
    coder.save_to_disk(folder)
    ours = load_sae(folder)
    assert ours.hook_name == "blocks.1.hook_resid_post" and ours.architecture == "topk"
    x = inputs()
    with torch.no_grad():
        out = coder.encode(x)
        dense = torch.zeros(x.shape[0], D_SAE).scatter_(-1, out.top_indices, out.top_acts)
        recon = coder.decode(out.top_acts, out.top_indices)
    assert torch.allclose(ours.encode(x), dense, atol=TOL)
    assert torch.allclose(ours.forward(x), recon, atol=TOL)


def our_sae(arch: str, apply_b_dec: bool = True, head=None, hook="blocks.1.hook_resid_post"):
    from sae_bench.sae import SAE

    g = torch.Generator().manual_seed(4)
    extra = {"relu": {}, "topk": {"k": K},
             "jumprelu": {"threshold": torch.rand(D_SAE, generator=g)},
             "batchtopk": {"k": K, "threshold": torch.full((D_SAE,), 0.2)},
             "gated": {"r_mag": torch.randn(D_SAE, generator=g) * 0.1,
                       "b_mag": torch.randn(D_SAE, generator=g) * 0.2}}[arch]
    return SAE(W_enc=torch.randn(D_IN, D_SAE, generator=g) * 0.3,
               W_dec=torch.randn(D_SAE, D_IN, generator=g) * 0.3,
               b_enc=torch.randn(D_SAE, generator=g) * 0.2,
               b_dec=torch.randn(D_IN, generator=g) * 0.5, architecture=arch, hook_name=hook,
               head=head, input_scale=0.3, apply_b_dec_to_input=apply_b_dec,
               metadata={"model_processing": {"fold_value_biases": True}}, **extra)


@pytest.mark.parametrize("apply_b_dec", [True, False])
@pytest.mark.parametrize("arch", ["relu", "gated", "topk", "batchtopk", "jumprelu"])
def test_our_export_loads_in_dictionary_learning(dl, tmp_path, arch, apply_b_dec):
    from sae_bench.sae.library_save import save_dictionary_learning

    ours = our_sae(arch, apply_b_dec)
    save_dictionary_learning(ours, tmp_path, lm_name="gpt2")
    cls = {"relu": dl.AutoEncoder, "gated": dl.GatedAutoEncoder, "topk": dl.AutoEncoderTopK,
           "batchtopk": dl.BatchTopKSAE, "jumprelu": dl.JumpReluAutoEncoder}[arch]
    ae = cls.from_pretrained(str(tmp_path / "ae.pt"), device="cpu")
    x = inputs()
    f_ref, recon_ref = library_forward(ae, x)
    assert torch.allclose(ours.forward(x), recon_ref, atol=1e-4)
    back = load_sae(tmp_path)  # AutoEncoder latents are on the unit-decoder scale, like ours
    assert torch.allclose(back.encode(x), f_ref, atol=1e-4)
    assert back.hook_name == ours.hook_name
    assert back.metadata["model_processing"]["fold_value_biases"]


@pytest.mark.parametrize("apply_b_dec", [True, False])
def test_our_export_loads_in_sparsify(sparsify, tmp_path, apply_b_dec):
    from sae_bench.sae.library_save import save_sparsify

    ours = our_sae("topk", apply_b_dec, hook="blocks.0.attn.hook_z", head=3)
    save_sparsify(ours, tmp_path / "z")
    coder = sparsify.SparseCoder.load_from_disk(tmp_path / "z")
    x = inputs()
    with torch.no_grad():
        out = coder.encode(x)
        dense = torch.zeros(x.shape[0], D_SAE).scatter_(-1, out.top_indices, out.top_acts)
        recon = coder.decode(out.top_acts, out.top_indices)
    assert torch.allclose(ours.encode(x), dense, atol=1e-4)
    assert torch.allclose(ours.forward(x), recon, atol=1e-4)
    back = load_sae(tmp_path / "z")
    assert (back.hook_name, back.head) == ("blocks.0.attn.hook_z", 3)
    with pytest.raises(UserError, match="sparsify stores TopK SAEs only"):
        save_sparsify(our_sae("relu"), tmp_path / "r")


def test_train_sae_writes_library_folders(dl, sparsify, tmp_path):
    from sae_bench.cli.main import main

    assert main(["train-sae", "--arch", "topk", "--k", "4", "--node",
                 "blocks.0.hook_resid_post@END", "--out", str(tmp_path / "s.safetensors"),
                 "--dictionary-learning", str(tmp_path / "dl"), "--sparsify",
                 str(tmp_path / "sp"), "--steps", "20", "--n-fit", "400", "--d-sae", "32",
                 "--quiet"]) == 0
    ours = load_sae(tmp_path / "s.safetensors")
    x = torch.randn(16, ours.d_in, generator=torch.Generator().manual_seed(2))
    ae = dl.AutoEncoderTopK.from_pretrained(str(tmp_path / "dl" / "ae.pt"), device="cpu")
    coder = sparsify.SparseCoder.load_from_disk(tmp_path / "sp")
    with torch.no_grad():
        assert torch.allclose(ae.decode(ae.encode(x)), ours.forward(x), atol=1e-4)
        out = coder.encode(x)
        assert torch.allclose(coder.decode(out.top_acts, out.top_indices), ours.forward(x),
                              atol=1e-4)
    assert load_sae(tmp_path / "dl").hook_name == "blocks.0.hook_resid_post"
