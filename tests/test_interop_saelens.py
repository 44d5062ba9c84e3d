"""Round trips through the real SAELens (the `interop` extra), in both directions.

Library save -> our load -> the library's own encode/decode on the same inputs; our export ->
`sae_lens.SAE.load_from_disk` -> the same. Every file here is written by SAELens itself or by our
exporter, never by hand. Skipped, with the reason, when SAELens is not installed.
"""

from __future__ import annotations

import json
import warnings

import pytest
import torch

sae_lens = pytest.importorskip(
    "sae_lens", reason="SAELens is not installed; install the interop extra (README, 'Interop')"
)
from sae_lens import SAE as LensSAE  # noqa: E402
from sae_lens import TrainingSAE  # noqa: E402
from sae_lens.saes.sae import SAEMetadata  # noqa: E402
from sae_lens.training.activation_scaler import ActivationScaler  # noqa: E402

from sae_bench.cli.main import main  # noqa: E402
from sae_bench.errors import UserError  # noqa: E402
from sae_bench.sae import SAE, load_sae  # noqa: E402
from sae_bench.sae.saelens_save import save_saelens  # noqa: E402

D_IN, D_SAE, K = 16, 48, 5
TOL = 2e-5


def lens_sae(arch: str, training: bool = False, **cfg_extra):
    """A SAELens SAE of `arch` with random weights (every bias and threshold non-trivial)."""
    classes = sae_lens.registry.SAE_TRAINING_CLASS_REGISTRY if training else \
        sae_lens.registry.SAE_CLASS_REGISTRY
    cfg_cls = classes[arch][1]
    cfg = cfg_cls(d_in=D_IN, d_sae=D_SAE, **cfg_extra,
                  metadata=SAEMetadata(hook_name="blocks.1.hook_resid_post"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sae = (TrainingSAE if training else LensSAE).from_dict(cfg.to_dict())
    gen = torch.Generator().manual_seed(len(arch))
    with torch.no_grad():
        for name, p in sae.named_parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * (0.3 if name != "r_mag" else 0.1))
        if hasattr(sae, "threshold"):
            sae.threshold.copy_(torch.rand(D_SAE, generator=gen) * 0.5)
        if hasattr(sae, "topk_threshold"):
            sae.topk_threshold.fill_(0.4)
    return sae.eval()


def inputs(n: int = 64, d: int = D_IN) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(7)) * 2 + 0.5


def assert_same(ours: SAE, f_ref: torch.Tensor, recon_ref: torch.Tensor, x: torch.Tensor):
    f = ours.encode(x)
    assert torch.allclose(f, f_ref, atol=TOL), float((f - f_ref).abs().max())
    assert torch.allclose(ours.decode(f), recon_ref, atol=TOL)


@pytest.mark.parametrize("arch, extra", [
    ("standard", {}), ("gated", {}), ("jumprelu", {}), ("topk", {"k": K}),
    ("topk", {"k": K, "rescale_acts_by_decoder_norm": True}),
])
def test_saelens_inference_saes_load_exactly(arch, extra, tmp_path):
    lens = lens_sae(arch, **extra)
    lens.save_model(tmp_path)
    x = inputs()
    with torch.no_grad():
        f_ref = lens.encode(x)
        assert_same(load_sae(tmp_path), f_ref, lens.decode(f_ref), x)


@pytest.mark.parametrize("arch, extra", [
    ("batchtopk", {"k": K}), ("matryoshka_batchtopk", {"k": K, "matryoshka_widths": [16, 48]}),
])
def test_saelens_batchtopk_checkpoints_load_as_their_inference_form(arch, extra, tmp_path):
    """Training checkpoints of (Matryoshka) BatchTopK load as what SAELens itself turns them into
    for inference: jumprelu with the learned threshold (point 4 of issue 12)."""
    lens = lens_sae(arch, training=True, **extra)
    lens.save_model(tmp_path / "ckpt")
    lens.save_inference_model(tmp_path / "inference")
    inference = LensSAE.load_from_disk(tmp_path / "inference")
    assert inference.cfg.architecture() == "jumprelu"
    ours = load_sae(tmp_path / "ckpt")
    assert ours.architecture == "batchtopk"
    x = inputs()
    with torch.no_grad():
        f_ref = inference.encode(x)
        assert_same(ours, f_ref, inference.decode(f_ref), x)


def test_activation_scaler_json_is_read(tmp_path):
    """A checkpoint trained with expected_average_only_in keeps its factor in
    activation_scaler.json (SAELens' ActivationScaler.save); no --input-scale is needed."""
    lens = lens_sae("standard", training=True, normalize_activations="expected_average_only_in")
    lens.save_model(tmp_path)
    scaler = ActivationScaler(scaling_factor=0.37)
    scaler.save(str(tmp_path / "activation_scaler.json"))
    ours = load_sae(tmp_path)
    assert ours.input_scale == pytest.approx(0.37)
    x = inputs()
    with torch.no_grad():
        f_ref = lens.encode(scaler.scale(x))
        assert_same(ours, f_ref, scaler.unscale(lens.decode(f_ref)), x)


@pytest.mark.parametrize("apply_b_dec", [True, False])
def test_covariance_whitening_is_folded_exactly(apply_b_dec, tmp_path):
    lens = lens_sae("standard", training=True, normalize_activations="covariance_whitening",
                    apply_b_dec_to_input=apply_b_dec)
    lens.save_model(tmp_path)
    batches = iter([inputs(256) @ torch.randn(D_IN, D_IN, generator=torch.Generator()
                                              .manual_seed(i)) for i in range(4)])
    scaler = ActivationScaler()
    scaler.estimate_whitening(D_IN, batches, n_batches_for_norm_estimate=4)
    scaler.save(str(tmp_path / "activation_scaler.json"))
    ours = load_sae(tmp_path)
    x = inputs()
    with torch.no_grad():
        f_ref = lens.encode(scaler.scale(x))
        f = ours.encode(x)
        assert torch.allclose(f, f_ref, atol=1e-4, rtol=1e-4)
        assert torch.allclose(ours.decode(f), scaler.unscale(lens.decode(f_ref)), atol=1e-4,
                              rtol=1e-4)
    (tmp_path / "activation_whitening.safetensors").unlink()
    with pytest.raises(UserError, match="whitening map is unknown"):
        load_sae(tmp_path)


def random_sae(arch: str, hook: str = "blocks.1.hook_resid_post", head=None, d_in=D_IN,
               **kw) -> SAE:
    gen = torch.Generator().manual_seed(3)
    t = {"W_enc": torch.randn(d_in, D_SAE, generator=gen) * 0.3,
         "W_dec": torch.randn(D_SAE, d_in, generator=gen) * 0.3,
         "b_enc": torch.randn(D_SAE, generator=gen) * 0.2,
         "b_dec": torch.randn(d_in, generator=gen) * 0.2}
    extra = {"relu": {}, "gated": {"r_mag": torch.randn(D_SAE, generator=gen) * 0.1,
                                   "b_mag": torch.randn(D_SAE, generator=gen) * 0.2},
             "topk": {"k": K}, "jumprelu": {"threshold": torch.rand(D_SAE, generator=gen)},
             "batchtopk": {"k": K, "threshold": torch.full((D_SAE,), 0.3)}}[arch]
    return SAE(**t, **extra, architecture=arch, hook_name=hook, head=head, input_scale=0.25,
               **kw)


@pytest.mark.parametrize("arch", ["relu", "gated", "topk", "batchtopk", "jumprelu"])
@pytest.mark.parametrize("apply_b_dec", [True, False])
def test_our_export_loads_in_saelens(arch, apply_b_dec, tmp_path):
    ours = random_sae(arch, apply_b_dec_to_input=apply_b_dec)
    save_saelens(ours, tmp_path)
    lens = LensSAE.load_from_disk(tmp_path)
    x = inputs()
    with torch.no_grad():
        f_ref = lens.encode(x)
        assert_same(ours, f_ref, lens.decode(f_ref), x)
    back = load_sae(tmp_path)  # and back into ours, unchanged
    assert_same(back, ours.encode(x), ours.forward(x), x)


def test_batchtopk_with_negative_threshold_exports_exactly(tmp_path):
    ours = random_sae("batchtopk").replace(threshold=torch.full((D_SAE,), -1.0))
    save_saelens(ours, tmp_path)
    lens = LensSAE.load_from_disk(tmp_path)
    with torch.no_grad():
        assert torch.allclose(lens.encode(inputs()), ours.encode(inputs()), atol=TOL)


def test_hook_z_exports(tmp_path):
    """Per-head z SAEs encode one head's d_head vector; whole-layer z SAEs get SAELens' hook_z
    reshaping, so SAELens feeds them [..., n_heads, d_head] (point 2 of issue 12)."""
    head = random_sae("relu", hook="blocks.0.attn.hook_z", head=2)
    save_saelens(head, tmp_path / "head")
    cfg = json.loads((tmp_path / "head" / "cfg.json").read_text())
    assert cfg["reshape_activations"] == "none" and cfg["metadata"]["sae_lens_version"]
    lens = LensSAE.load_from_disk(tmp_path / "head")
    with torch.no_grad():
        assert torch.allclose(lens.encode(inputs()), head.encode(inputs()), atol=TOL)
    layer = random_sae("relu", hook="blocks.0.attn.hook_z")  # 4 heads x 4 dims
    save_saelens(layer, tmp_path / "layer")
    lens = LensSAE.load_from_disk(tmp_path / "layer")
    assert lens.cfg.reshape_activations == "hook_z"
    x = inputs()
    with torch.no_grad():
        f = lens.encode(x.reshape(-1, 4, 4))
        assert torch.allclose(f, layer.encode(x), atol=TOL)
        assert torch.allclose(lens.decode(f).reshape(-1, D_IN), layer.forward(x), atol=TOL)


QUICK = ["--steps", "20", "--n-fit", "400", "--d-sae", "32", "--quiet"]


@pytest.mark.parametrize("arch, node, sparsity", [
    ("batchtopk", "blocks.0.hook_resid_post@END", ["--k", "4"]),   # point 1
    ("relu", "blocks.0.attn.hook_z:2@END", ["--l1", "1"]),         # point 2
])
def test_train_sae_saelens_export_loads_and_encodes_in_saelens(arch, node, sparsity, tmp_path):
    folder = tmp_path / "lens"
    assert main(["train-sae", "--arch", arch, *sparsity, "--node", node, "--out",
                 str(tmp_path / "s.safetensors"), "--saelens", str(folder), *QUICK]) == 0
    ours = load_sae(tmp_path / "s.safetensors")
    lens = LensSAE.load_from_disk(folder)
    x = torch.randn(32, ours.d_in, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        f_ref = lens.encode(x)
        assert_same(ours, f_ref, lens.decode(f_ref), x)
    # SAELens will load the model the way the SAE saw it: ioi-tiny's paper processing.
    kwargs = lens.cfg.metadata.model_from_pretrained_kwargs
    assert kwargs["refactor_factored_attn_matrices"] and kwargs["center_writing_weights"]


def test_saelens_model_processing_is_read(tmp_path):
    lens = lens_sae("standard")
    lens.cfg.metadata.model_from_pretrained_kwargs = {"center_writing_weights": True}
    lens.save_model(tmp_path)
    processing = load_sae(tmp_path).metadata["model_processing"]
    assert processing["center_writing_weights"] and not processing["fold_ln"]


class _TokenStore:
    """The one method of SAELens' ActivationsStore that its sparsity/variance eval calls."""

    def __init__(self, tokens: torch.Tensor) -> None:
        self.tokens = tokens

    def get_batch_tokens(self, n: int) -> torch.Tensor:
        return self.tokens[:n]


@pytest.mark.parametrize("arch", ["relu", "topk", "jumprelu"])
def test_fvu_l0_gamma_agree_with_sae_lens_evals(arch, tmp_path):
    """Our approximation metrics against `sae_lens.evals` on the same activations: every token
    of 64 IOI prompts through ioi-tiny at blocks.0.hook_resid_post."""
    from sae_lens.evals import get_sparsity_and_variance_metrics

    from sae_bench.axes import approximation as approx
    from sae_bench.models.registry import load_model
    from sae_bench.tasks import get_task

    model = load_model("ioi-tiny")
    hook = "blocks.0.hook_resid_post"
    ours = random_sae(arch, hook=hook, d_in=model.cfg.d_model)
    save_saelens(ours, tmp_path)
    lens = LensSAE.load_from_disk(tmp_path)
    tokens = get_task("ioi").build(model, n=64, seed=0, split="eval").tokens
    metrics, _ = get_sparsity_and_variance_metrics(
        lens, model, _TokenStore(tokens), ActivationScaler(), n_batches=1,
        compute_l2_norms=True, compute_sparsity_metrics=True, compute_variance_metrics=True,
        compute_featurewise_density_statistics=False, eval_batch_size_prompts=len(tokens),
        model_kwargs={},
    )
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names_filter=[hook])
        acts = cache[hook].reshape(-1, model.cfg.d_model)
        latents = ours.encode(acts)
        recon = ours.decode(latents)
    assert approx.fvu(acts, recon) == pytest.approx(1 - metrics["explained_variance"], abs=1e-5)
    assert approx.l0(latents) == pytest.approx(metrics["l0"], abs=1e-4)
    # SAELens reports the pooled gamma (our `shrinkage` is the centred one since schema 2.0)
    assert approx.shrinkage_pooled(acts, recon) == pytest.approx(
        metrics["relative_reconstruction_bias"], rel=1e-5)


def test_named_saelens_sae_fails_fast_offline(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    assert main(["run", "--sae", "saelens:gpt2-small-res-jb/blocks.8.hook_resid_pre",
                 "--model", "gpt2", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "hub cannot be reached" in err[0]
    assert main(["run", "--sae", "saelens:gpt2-small-hook-z-kk/blocks.9.hook",
                 "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Did you mean 'blocks.9.hook_z'?" in err[0]
    assert not (tmp_path / "r").exists()


def test_named_saelens_sae_goes_through_saelens_loader(monkeypatch, tmp_path):
    """The mechanics, with a SAELens SAE saved locally standing in for the hub download: a
    concatenated-z SAE (like gpt2-small-hook-z-kk) on ioi-tiny's layer-0 z (4 heads x 32)."""
    from sae_bench.models.registry import load_model
    from sae_bench.results.document import load_result
    from sae_bench.results.export.saebench import unit_document
    from sae_bench.sae import saelens_hub

    model = load_model("ioi-tiny")
    width = model.cfg.n_heads * model.cfg.d_head
    ours = random_sae("relu", hook="blocks.0.attn.hook_z", d_in=width)
    save_saelens(ours, tmp_path / "kk")
    calls = []

    def from_pretrained(cls, release, sae_id, device="cpu", **kw):
        calls.append((release, sae_id))
        return LensSAE.load_from_disk(tmp_path / "kk")

    monkeypatch.setattr(LensSAE, "from_pretrained", classmethod(from_pretrained))
    monkeypatch.setattr(saelens_hub, "_reachable", lambda repo: True)
    sae = load_sae("saelens:gpt2-small-hook-z-kk/blocks.0.hook_z")
    assert calls == [("gpt2-small-hook-z-kk", "blocks.0.hook_z")]
    assert sae.source_path == "saelens:gpt2-small-hook-z-kk/blocks.0.hook_z"
    assert sae.hook_name == "blocks.0.attn.hook_z" and sae.head is None
    x = torch.randn(16, width, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(sae.forward(x), ours.forward(x), atol=TOL)
    # one head of it is refused with the reason; the layer's z node is the exact place
    with pytest.raises(UserError, match="score it at the layer node blocks.0.attn.hook_z@END"):
        sae.check_width(model.cfg.d_head, "blocks.0.attn.hook_z:1@END")
    sae.check_width(width, "blocks.0.attn.hook_z@END")
    # the SAEBench export names the release and ID
    from pathlib import Path

    doc = load_result(Path(__file__).parents[1] / "reports/ioi-tiny/runs/topk-k16-task"
                      / "results.json")
    named = doc.model_copy(update={"saes": [doc.saes[0].model_copy(
        update={"source": sae.source_path})]})
    out = unit_document(named, named.units[0], "0" * 64, eval_id="x", millis=0)
    assert (out["sae_lens_release_id"], out["sae_lens_id"]) == ("gpt2-small-hook-z-kk",
                                                                "blocks.0.hook_z")


def test_undeclared_processing_survives_our_export(tmp_path):
    ours = random_sae("relu")  # declares no processing: scored on the model as loaded
    save_saelens(ours, tmp_path)
    assert load_sae(tmp_path).metadata.get("model_processing") is None
