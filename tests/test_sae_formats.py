"""Every format loads into the same contract and computes what the original library computes.

The writers below produce each library's real on-disk layout (file names, tensor names and
orientations, config keys); the `*_reference` functions re-implement each library's forward pass
from its documented semantics, independently of sae_bench.sae.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from sae_bench.errors import UserError
from sae_bench.models.nodes import Node
from sae_bench.sae import SAE, SAEBundle, detect_format, load_sae, save_native

D_IN, D_SAE, K = 4, 6, 2
HOOK = "blocks.2.hook_resid_post"


def rand(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def inputs() -> torch.Tensor:
    return rand(5, D_IN, seed=99) * 2


# ------------------------------------------------------------------------------------ native
def native_sae(architecture: str, **kwargs) -> SAE:
    extras: dict = {}
    if architecture in ("jumprelu", "batchtopk"):
        extras["threshold"] = rand(D_SAE, seed=5).abs() * 0.3
    if architecture == "gated":
        extras.update(r_mag=rand(D_SAE, seed=6) * 0.1, b_mag=rand(D_SAE, seed=7) * 0.1)
    if architecture in ("topk", "batchtopk"):
        extras["k"] = K
    return SAE(
        W_enc=rand(D_IN, D_SAE, seed=1), W_dec=rand(D_SAE, D_IN, seed=2),
        b_enc=rand(D_SAE, seed=3) * 0.1, b_dec=rand(D_IN, seed=4) * 0.1,
        architecture=architecture, **{"hook_name": HOOK, **extras, **kwargs},
    )


def assert_same_maps(a: SAE, b: SAE) -> None:
    x = inputs()
    assert torch.allclose(a.encode(x), b.encode(x), atol=1e-6)
    assert torch.allclose(a(x), b(x), atol=1e-6)


@pytest.mark.parametrize("architecture", ["relu", "gated", "topk", "batchtopk", "jumprelu"])
def test_native_safetensors_round_trip(tmp_path: Path, architecture: str) -> None:
    sae = native_sae(architecture, head=None, position="END", input_scale=0.5,
                     metadata={"trained_on": "ioi", "steps": 10})
    path = save_native(sae, tmp_path / "sae.safetensors")
    loaded = load_sae(path)
    assert isinstance(loaded, SAE)
    for name, tensor in sae.tensors().items():
        assert torch.equal(loaded.tensors()[name], tensor), name
    assert (loaded.architecture, loaded.hook_name, loaded.position) == (architecture, HOOK, "END")
    assert loaded.input_scale == 0.5 and loaded.k == sae.k
    assert loaded.metadata["trained_on"] == "ioi" and loaded.metadata["steps"] == 10
    assert loaded.format == "native" and loaded.source_path == str(path)
    assert loaded.sha256 is not None and len(loaded.sha256) == 64
    assert_same_maps(loaded, sae)


def test_save_native_is_atomic_and_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "out" / "sae.safetensors"
    save_native(native_sae("relu"), path)
    save_native(native_sae("topk"), path)
    assert load_sae(path).architecture == "topk"
    assert sorted(p.name for p in path.parent.iterdir()) == ["sae.safetensors"]
    with pytest.raises(UserError, match="writes .safetensors"):
        save_native(native_sae("relu"), tmp_path / "sae.pt")


def test_native_pt_round_trip(tmp_path: Path) -> None:
    ref = native_sae("jumprelu", head=3, hook_name="blocks.1.attn.hook_z", input_scale=2.0)
    path = tmp_path / "sae.pt"
    torch.save({**ref.tensors(), "architecture": "jumprelu", "hook_name": "blocks.1.attn.hook_z",
                "head": 3, "position": "S2", "input_scale": 2.0, "note": "hi"}, path)
    loaded = load_sae(path)
    assert isinstance(loaded, SAE)
    assert (loaded.hook_name, loaded.head, loaded.position) == ("blocks.1.attn.hook_z", 3, "S2")
    assert loaded.input_scale == 2.0 and loaded.metadata["note"] == "hi"
    assert_same_maps(loaded, ref)


def test_native_pt_with_k_tensor_and_gated_alias(tmp_path: Path) -> None:
    ref = native_sae("topk")
    torch.save({**ref.tensors(), "k": torch.tensor(K), "architecture": "topk",
                "hook_name": HOOK}, tmp_path / "topk.pt")
    assert load_sae(tmp_path / "topk.pt").k == K
    torch.save({**ref.tensors(), "k": float(K), "architecture": "topk",
                "hook_name": HOOK}, tmp_path / "topk_float.pt")
    assert load_sae(tmp_path / "topk_float.pt").k == K
    gated = native_sae("gated")
    tensors = gated.tensors()
    tensors["b_gate"] = tensors.pop("b_enc")
    save_file(tensors, str(tmp_path / "g.safetensors"),
              metadata={"architecture": "gated", "hook_name": HOOK})
    assert_same_maps(load_sae(tmp_path / "g.safetensors"), gated)  # type: ignore[arg-type]


def test_hook_name_override(tmp_path: Path) -> None:
    path = save_native(native_sae("relu"), tmp_path / "s.safetensors")
    loaded = load_sae(path, hook_name="blocks.0.hook_mlp_out")
    assert loaded.hook_name == "blocks.0.hook_mlp_out"
    assert loaded.metadata["hook_name_source"] == "override"


# ------------------------------------------------------------------------------------ SAELens
def write_saelens(folder: Path, cfg: dict, tensors: dict[str, torch.Tensor]) -> Path:
    folder.mkdir(parents=True)
    (folder / "cfg.json").write_text(json.dumps(cfg))
    weights = {k: v.contiguous() for k, v in tensors.items()}
    save_file(weights, str(folder / "sae_weights.safetensors"))
    return folder


def saelens_cfg_v6(architecture: str, **extra) -> dict:
    return {
        "d_in": D_IN, "d_sae": D_SAE, "dtype": "float32", "device": "cpu",
        "apply_b_dec_to_input": True, "normalize_activations": "none",
        "reshape_activations": "none", "architecture": architecture,
        "metadata": {"model_name": "gpt2-small", "hook_name": HOOK, "hook_head_index": None,
                     "sae_lens_version": "6.5.1", "context_size": 128},
        **extra,
    }


def saelens_tensors(architecture: str) -> dict[str, torch.Tensor]:
    t = {"W_enc": rand(D_IN, D_SAE, seed=11), "W_dec": rand(D_SAE, D_IN, seed=12),
         "b_dec": rand(D_IN, seed=13) * 0.1}
    if architecture == "gated":
        t.update(b_gate=rand(D_SAE, seed=14) * 0.1, b_mag=rand(D_SAE, seed=15) * 0.1,
                 r_mag=rand(D_SAE, seed=16) * 0.1)
    else:
        t["b_enc"] = rand(D_SAE, seed=14) * 0.1
    if architecture == "jumprelu":
        t["threshold"] = rand(D_SAE, seed=17).abs() * 0.5
    return t


def saelens_reference(arch: str, t: dict, cfg: dict, x: torch.Tensor):
    """SAELens inference: process_sae_in, encode per architecture, decode."""
    sae_in = x * cfg.get("scale", 1.0) - t["b_dec"] * cfg.get("apply_b_dec_to_input", True)
    norms = t["W_dec"].norm(dim=-1)
    if arch == "gated":
        gate = ((sae_in @ t["W_enc"] + t["b_gate"]) > 0).float()
        f = gate * torch.relu(sae_in @ (t["W_enc"] * t["r_mag"].exp()) + t["b_mag"])
    else:
        hidden = sae_in @ t["W_enc"] + t["b_enc"]
        if arch == "standard":
            f = torch.relu(hidden)
        elif arch == "jumprelu":
            f = torch.relu(hidden) * (hidden > t["threshold"])
        else:  # topk
            if cfg.get("rescale_acts_by_decoder_norm"):
                hidden = hidden * norms
            values, idx = hidden.topk(cfg["k"], dim=-1)
            f = torch.zeros_like(hidden).scatter(-1, idx, values.relu())
    acts = f / norms if cfg.get("rescale_acts_by_decoder_norm") else f
    recon = (acts @ t["W_dec"] + t["b_dec"]) / cfg.get("scale", 1.0)
    return f, recon


@pytest.mark.parametrize("arch", ["standard", "gated", "jumprelu", "topk"])
def test_saelens_v6_matches_reference(tmp_path: Path, arch: str) -> None:
    extra = {"k": K, "rescale_acts_by_decoder_norm": False} if arch == "topk" else {}
    cfg, t = saelens_cfg_v6(arch, **extra), saelens_tensors(arch)
    folder = write_saelens(tmp_path / "sae", cfg, t)
    sae = load_sae(folder)
    assert isinstance(sae, SAE) and sae.format == "saelens"
    assert sae.hook_name == HOOK and sae.head is None and sae.input_scale == 1.0
    assert sae.metadata["model_name"] == "gpt2-small"
    assert set(sae.file_sha256) == {"cfg.json", "sae_weights.safetensors"}
    x = inputs()
    f_ref, recon_ref = saelens_reference(arch, t, cfg, x)
    assert torch.allclose(sae.encode(x), f_ref, atol=1e-6)
    assert torch.allclose(sae(x), recon_ref, atol=1e-5)
    # ... and a native copy of it computes the same maps.
    assert_same_maps(load_sae(save_native(sae, tmp_path / "n.safetensors")), sae)  # type: ignore


def test_saelens_topk_rescale_by_decoder_norm_is_folded(tmp_path: Path) -> None:
    cfg = saelens_cfg_v6("topk", k=K, rescale_acts_by_decoder_norm=True)
    t = saelens_tensors("topk")
    sae = load_sae(write_saelens(tmp_path / "sae", cfg, t))
    x = inputs()
    f_ref, recon_ref = saelens_reference("topk", t, cfg, x)
    assert torch.allclose(sae.encode(x), f_ref, atol=1e-5)
    assert torch.allclose(sae(x), recon_ref, atol=1e-5)


def test_saelens_pre_6_config(tmp_path: Path) -> None:
    cfg = {"d_in": D_IN, "d_sae": D_SAE, "hook_point": "blocks.1.attn.hook_z",
           "hook_point_layer": 1, "hook_point_head_index": 4, "activation_fn_str": "topk",
           "activation_fn_kwargs": {"k": K}, "normalize_activations": False,
           "sae_lens_training_version": "3.1.0"}
    t = saelens_tensors("topk")
    sae = load_sae(write_saelens(tmp_path / "old", cfg, t))
    assert (sae.architecture, sae.k, sae.hook_name, sae.head) == (
        "topk", K, "blocks.1.attn.hook_z", 4)
    f_ref, _ = saelens_reference("topk", t, {**cfg, "k": K}, inputs())
    assert torch.allclose(sae.encode(inputs()), f_ref, atol=1e-6)


def test_saelens_normalisation_and_scaling_factor(tmp_path: Path) -> None:
    t = saelens_tensors("standard")
    cfg = saelens_cfg_v6("standard", normalize_activations="expected_average_only_in",
                         norm_scaling_factor=0.3)
    sae = load_sae(write_saelens(tmp_path / "a", cfg, t))
    assert sae.input_scale == pytest.approx(0.3)
    f_ref, recon_ref = saelens_reference("standard", t, {**cfg, "scale": 0.3}, inputs())
    assert torch.allclose(sae.encode(inputs()), f_ref, atol=1e-6)
    assert torch.allclose(sae(inputs()), recon_ref, atol=1e-5)
    # Caller-supplied factor for a folder that does not store it.
    cfg.pop("norm_scaling_factor")
    folder = write_saelens(tmp_path / "b", cfg, t)
    assert load_sae(folder, input_scale=0.3).input_scale == pytest.approx(0.3)
    # Old finetuning scaling factor multiplies latents before W_dec.
    scaling = rand(D_SAE, seed=21).abs() + 0.5
    sae_sf = load_sae(write_saelens(tmp_path / "c", saelens_cfg_v6("standard"),
                                    {**t, "scaling_factor": scaling}))
    f = sae_sf.encode(inputs())
    assert torch.allclose(sae_sf.decode(f), (f * scaling) @ t["W_dec"] + t["b_dec"], atol=1e-5)


def test_saelens_jumprelu_log_threshold(tmp_path: Path) -> None:
    t = saelens_tensors("jumprelu")
    t["log_threshold"] = t.pop("threshold").log()
    sae = load_sae(write_saelens(tmp_path / "j", saelens_cfg_v6("jumprelu"), t))
    assert torch.allclose(sae.threshold, t["log_threshold"].exp())  # type: ignore[arg-type]


# ------------------------------------------------------------------------ dictionary_learning
def write_dl(folder: Path, state: dict, trainer: dict) -> Path:
    folder.mkdir(parents=True)
    torch.save(OrderedDict(state), folder / "ae.pt")
    config = {"trainer": {"activation_dim": D_IN, "dict_size": D_SAE, "layer": 2,
                          "lm_name": "EleutherAI/pythia-70m-deduped",
                          "submodule_name": "resid_post_layer_2", **trainer},
              "buffer": {"d_submodule": D_IN, "ctx_len": 128}}
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def dl_linear_state() -> dict[str, torch.Tensor]:
    return {"encoder.weight": rand(D_SAE, D_IN, seed=31),
            "encoder.bias": rand(D_SAE, seed=32) * 0.1,
            "decoder.weight": rand(D_IN, D_SAE, seed=33)}


def test_dictionary_learning_autoencoder(tmp_path: Path) -> None:
    state = {**dl_linear_state(), "bias": rand(D_IN, seed=34) * 0.1}
    sae = load_sae(write_dl(tmp_path / "ae", state, {"dict_class": "AutoEncoder"}))
    assert sae.hook_name == HOOK and sae.format == "dictionary_learning"
    x = inputs()
    f_ref = torch.relu((x - state["bias"]) @ state["encoder.weight"].T + state["encoder.bias"])
    recon_ref = f_ref @ state["decoder.weight"].T + state["bias"]
    # from_pretrained(normalize_decoder=True): latents on the unit-decoder scale, same recon.
    norms = state["decoder.weight"].norm(dim=0)
    assert torch.allclose(sae.encode(x), f_ref * norms, atol=1e-5)
    assert torch.allclose(sae(x), recon_ref, atol=1e-5)
    assert torch.allclose(sae.W_dec.norm(dim=-1), torch.ones(D_SAE))


def test_dictionary_learning_autoencoder_new(tmp_path: Path) -> None:
    state = {**dl_linear_state(), "decoder.bias": rand(D_IN, seed=35)}
    sae = load_sae(write_dl(tmp_path / "new", state, {"dict_class": "AutoEncoderNew"}))
    x = inputs()
    f_ref = torch.relu(x @ state["encoder.weight"].T + state["encoder.bias"])
    assert torch.allclose(sae.encode(x), f_ref, atol=1e-6)
    assert torch.allclose(sae(x), f_ref @ state["decoder.weight"].T + state["decoder.bias"],
                          atol=1e-5)


def test_dictionary_learning_gated(tmp_path: Path) -> None:
    state = {"encoder.weight": rand(D_SAE, D_IN, seed=41),
             "decoder.weight": rand(D_IN, D_SAE, seed=42),
             "decoder_bias": rand(D_IN, seed=43) * 0.1, "r_mag": rand(D_SAE, seed=44) * 0.1,
             "gate_bias": rand(D_SAE, seed=45) * 0.1, "mag_bias": rand(D_SAE, seed=46) * 0.1}
    sae = load_sae(write_dl(tmp_path / "g", state, {"dict_class": "GatedAutoEncoder"}))
    x = inputs()
    x_enc = (x - state["decoder_bias"]) @ state["encoder.weight"].T
    gate = (x_enc + state["gate_bias"] > 0).float()
    f_ref = gate * torch.relu(state["r_mag"].exp() * x_enc + state["mag_bias"])
    assert torch.allclose(sae.encode(x), f_ref, atol=1e-6)
    assert torch.allclose(sae(x), f_ref @ state["decoder.weight"].T + state["decoder_bias"],
                          atol=1e-5)


@pytest.mark.parametrize("dict_class", ["AutoEncoderTopK", "BatchTopKSAE"])
def test_dictionary_learning_topk_variants(tmp_path: Path, dict_class: str) -> None:
    state = {**dl_linear_state(), "b_dec": rand(D_IN, seed=36) * 0.1,
             "k": torch.tensor(K, dtype=torch.int), "threshold": torch.tensor(0.2)}
    sae = load_sae(write_dl(tmp_path / dict_class, state, {"dict_class": dict_class, "k": K}))
    x = inputs()
    post_relu = torch.relu((x - state["b_dec"]) @ state["encoder.weight"].T + state["encoder.bias"])
    if dict_class == "AutoEncoderTopK":
        values, idx = post_relu.topk(K, dim=-1)
        f_ref = torch.zeros_like(post_relu).scatter(-1, idx, values)
        assert sae.architecture == "topk"
    else:  # inference encode of BatchTopKSAE (use_threshold=True)
        f_ref = post_relu * (post_relu > 0.2)
        assert sae.architecture == "batchtopk" and sae.k == K
    assert torch.allclose(sae.encode(x), f_ref, atol=1e-6)
    assert torch.allclose(sae(x), f_ref @ state["decoder.weight"].T + state["b_dec"], atol=1e-5)


@pytest.mark.parametrize("dict_class", ["JumpReluAutoEncoder", "MatryoshkaBatchTopKSAE"])
def test_dictionary_learning_parameter_layouts(tmp_path: Path, dict_class: str) -> None:
    state = {"W_enc": rand(D_IN, D_SAE, seed=51), "b_enc": rand(D_SAE, seed=52) * 0.1,
             "W_dec": rand(D_SAE, D_IN, seed=53), "b_dec": rand(D_IN, seed=54) * 0.1}
    if dict_class == "JumpReluAutoEncoder":
        state["threshold"] = rand(D_SAE, seed=55).abs() * 0.3
    else:
        state.update(k=torch.tensor(K), threshold=torch.tensor(0.1),
                     group_sizes=torch.tensor([2, 4]))
    sae = load_sae(write_dl(tmp_path / dict_class, state, {"dict_class": dict_class}) / "ae.pt")
    x = inputs()
    if dict_class == "JumpReluAutoEncoder":  # apply_b_dec_to_input=False in the library
        pre = x @ state["W_enc"] + state["b_enc"]
        f_ref = torch.relu(pre * (pre > state["threshold"]))
    else:
        post = torch.relu((x - state["b_dec"]) @ state["W_enc"] + state["b_enc"])
        f_ref = post * (post > 0.1)
    assert torch.allclose(sae.encode(x), f_ref, atol=1e-6)
    assert torch.allclose(sae(x), f_ref @ state["W_dec"] + state["b_dec"], atol=1e-5)


# ----------------------------------------------------------------------------------- sparsify
def write_sparsify(folder: Path, cfg_extra: dict | None = None, tensors: dict | None = None):
    folder.mkdir(parents=True)
    cfg = {"activation": "topk", "expansion_factor": 32, "normalize_decoder": True,
           "num_latents": D_SAE, "k": K, "multi_topk": False, "skip_connection": False,
           "transcode": False, "d_in": D_IN, **(cfg_extra or {})}
    (folder / "cfg.json").write_text(json.dumps(cfg))
    t = tensors or {"encoder.weight": rand(D_SAE, D_IN, seed=61),
                    "encoder.bias": rand(D_SAE, seed=62) * 0.1,
                    "W_dec": rand(D_SAE, D_IN, seed=63), "b_dec": rand(D_IN, seed=64) * 0.1}
    save_file(t, str(folder / "sae.safetensors"))
    return folder, t


@pytest.mark.parametrize(("hookpoint", "hook"), [
    ("layers.3", "blocks.3.hook_resid_post"),
    ("layers.0.mlp", "blocks.0.hook_mlp_out"),
    ("gpt_neox.layers.1.attention", "blocks.1.hook_attn_out"),
    ("custom_point", None),
])
def test_sparsify_matches_reference(tmp_path: Path, hookpoint: str, hook: str | None) -> None:
    folder, t = write_sparsify(tmp_path / "run" / hookpoint)
    sae = load_sae(folder)
    assert sae.format == "sparsify" and sae.hook_name == hook and sae.k == K
    x = inputs()
    pre = torch.relu((x - t["b_dec"]) @ t["encoder.weight"].T + t["encoder.bias"])
    values, idx = pre.topk(K, dim=-1)
    f_ref = torch.zeros_like(pre).scatter(-1, idx, values)
    assert torch.allclose(sae.encode(x), f_ref, atol=1e-6)
    assert torch.allclose(sae(x), f_ref @ t["W_dec"] + t["b_dec"], atol=1e-5)
    assert load_sae(folder, hook_name=HOOK).hook_name == HOOK


# ------------------------------------------------------------------------------ detection
def test_detection_from_files_inside_folders(tmp_path: Path) -> None:
    folder = write_saelens(tmp_path / "sl", saelens_cfg_v6("standard"), saelens_tensors("standard"))
    assert detect_format(folder / "cfg.json") == ("saelens", folder)
    assert detect_format(folder / "sae_weights.safetensors") == ("saelens", folder)
    assert load_sae(folder / "sae_weights.safetensors").format == "saelens"
    sp, _ = write_sparsify(tmp_path / "sp" / "layers.1")
    assert detect_format(sp / "sae.safetensors") == ("sparsify", sp)
    assert load_sae(sp, format_name="sparsify").format == "sparsify"


def test_root_with_many_saes_points_to_them(tmp_path: Path) -> None:
    write_sparsify(tmp_path / "run" / "layers.1")
    write_sparsify(tmp_path / "run" / "layers.2")
    with pytest.raises(UserError, match=r"holds 2 SAEs \(layers.1, layers.2\).*bundle.json"):
        load_sae(tmp_path / "run")


# ------------------------------------------------------------------------------------ bundles
def test_bundle_loads_in_order_with_node_positions(tmp_path: Path) -> None:
    save_native(native_sae("relu", position="IO"), tmp_path / "a.safetensors")
    save_native(native_sae("topk").replace(hook_name="blocks.9.attn.hook_z", head=9),
                tmp_path / "nm_9_9.safetensors")
    write_sparsify(tmp_path / "sp" / "custom_point")  # hook unknown: taken from the node
    no_hook = native_sae("relu").tensors()
    save_file(no_hook, str(tmp_path / "nohook.safetensors"), metadata={"architecture": "relu"})
    manifest = {"saes": [
        {"node": "blocks.9.attn.hook_z:9@END", "path": "nm_9_9.safetensors"},
        {"node": f"{HOOK}@S2", "path": "a.safetensors"},
        {"node": "blocks.4.hook_resid_pre@END", "path": "sp/custom_point"},
        {"node": "blocks.1.hook_resid_post@S1", "path": "nohook.safetensors"},
    ]}
    (tmp_path / "bundle.json").write_text(json.dumps(manifest))
    loaded = load_sae(tmp_path)
    assert isinstance(loaded, SAEBundle) and len(loaded) == 4
    filled = loaded["blocks.1.hook_resid_post@S1"]
    assert filled.hook_name == "blocks.1.hook_resid_post"
    assert filled.metadata["hook_name_source"] == "bundle node"
    assert [n.name for n in loaded] == [e["node"] for e in manifest["saes"]]
    second = loaded[Node.parse(f"{HOOK}@S2")]
    assert second.position == "S2"  # the node overrides the file's "IO"
    assert loaded["blocks.4.hook_resid_pre@END"].hook_name == "blocks.4.hook_resid_pre"
    assert loaded["blocks.9.attn.hook_z:9@END"].head == 9
    assert load_sae(tmp_path / "bundle.json").nodes == loaded.nodes
    assert loaded.sha256 is not None


def test_bundle_rejects_contradicting_hook(tmp_path: Path) -> None:
    save_native(native_sae("relu"), tmp_path / "a.safetensors")
    (tmp_path / "bundle.json").write_text(json.dumps(
        {"saes": [{"node": "blocks.5.hook_resid_post@END", "path": "a.safetensors"}]}))
    with pytest.raises(UserError, match=r"entry 0 .*says hook 'blocks.2.hook_resid_post'"):
        load_sae(tmp_path)
