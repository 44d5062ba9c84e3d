"""Round trips through the real dictionary_learning and sparsify (the `interop` extra).

dictionary_learning checkpoints are written by the library's own `trainSAE` (a few steps on
random activations, with and without its activation normalisation); sparsify folders by
`SparseCoder.save_to_disk`. Each is loaded here and compared with the library's own
encode/decode. Skipped, with the reason, when a library is not installed.
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
