"""Every malformed input is one `UserError` line naming the problem and the fix."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from sae_bench.errors import UserError
from sae_bench.sae import SAE, load_sae, save_native

D_IN, D_SAE = 3, 5
HOOK = "blocks.0.hook_resid_post"


def tensors(**overrides: torch.Tensor | None) -> dict[str, torch.Tensor]:
    base = {"W_enc": torch.ones(D_IN, D_SAE), "W_dec": torch.ones(D_SAE, D_IN),
            "b_enc": torch.zeros(D_SAE), "b_dec": torch.zeros(D_IN)}
    base.update(overrides)  # type: ignore[arg-type]
    return {k: v for k, v in base.items() if v is not None}


def write(tmp_path: Path, name: str = "sae.safetensors", meta: dict | None = None,
          **overrides: torch.Tensor | None) -> Path:
    path = tmp_path / name
    header = {"architecture": "relu", "hook_name": HOOK} if meta is None else meta
    save_file(tensors(**overrides), str(path), metadata=header)
    return path


def load_error(path: Path, **kwargs) -> str:
    with pytest.raises(UserError) as info:
        load_sae(path, **kwargs)
    message = str(info.value)
    assert "\n" not in message, "UserError messages must be one line"
    return message


# --------------------------------------------------------------------------- files and formats
def test_missing_path(tmp_path: Path) -> None:
    assert "SAE path not found" in load_error(tmp_path / "nope.safetensors")


@pytest.mark.parametrize("name", ["empty.safetensors", "empty.pt"])
def test_empty_file(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_bytes(b"")
    assert "is empty (0 bytes)" in load_error(tmp_path / name)


def test_truncated_safetensors(tmp_path: Path) -> None:
    data = write(tmp_path).read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
    message = load_error(tmp_path / "cut.safetensors")
    assert "cannot read" in message and "corrupt or truncated" in message


def test_truncated_pt(tmp_path: Path) -> None:
    torch.save({**tensors(), "architecture": "relu", "hook_name": HOOK}, tmp_path / "ok.pt")
    data = (tmp_path / "ok.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    assert "corrupt, truncated" in load_error(tmp_path / "cut.pt")


def test_unrecognised_file_and_folder(tmp_path: Path) -> None:
    (tmp_path / "weights.npz").write_bytes(b"x")
    assert "unrecognised SAE file" in load_error(tmp_path / "weights.npz")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "notes.txt").write_text("hi")
    message = load_error(tmp_path / "junk")
    assert "unrecognised SAE folder" in message and "notes.txt" in message


def test_unknown_format_name_did_you_mean(tmp_path: Path) -> None:
    message = load_error(write(tmp_path), format_name="saelense")
    assert "unknown SAE format 'saelense'" in message and "Did you mean 'saelens'?" in message


def test_saelens_folder_without_weights(tmp_path: Path) -> None:
    (tmp_path / "cfg.json").write_text("{}")
    assert "weights file is missing" in load_error(tmp_path)


def test_pickled_code_is_refused_and_not_run(tmp_path: Path) -> None:
    marker = tmp_path / "code_ran"

    class Payload:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    torch.save({**tensors(), "architecture": "relu", "evil": Payload()}, tmp_path / "evil.pt")
    message = load_error(tmp_path / "evil.pt")
    assert "refusing to load" in message and "contains pickled code" in message
    assert "re-save it as tensors (safetensors)" in message
    assert not marker.exists()


def test_non_tensor_junk_in_pt(tmp_path: Path) -> None:
    torch.save({**tensors(), "architecture": "relu", "hook_name": HOOK, "hist": [1, 2]},
               tmp_path / "list.pt")
    assert "key 'hist' holds a list, not a tensor" in load_error(tmp_path / "list.pt")
    torch.save([torch.zeros(2)], tmp_path / "top.pt")
    assert "holds a list, not a dict of tensors" in load_error(tmp_path / "top.pt")


def test_invalid_json_config(tmp_path: Path) -> None:
    (tmp_path / "cfg.json").write_text("{not json")
    save_file(tensors(), str(tmp_path / "sae_weights.safetensors"))
    assert "is not valid JSON" in load_error(tmp_path)


# --------------------------------------------------------------------------- keys and shapes
def test_missing_keys_are_named(tmp_path: Path) -> None:
    path = write(tmp_path, W_dec=None, b_dec=None)
    message = load_error(path)
    assert "missing tensor(s) 'W_dec', 'b_dec'" in message


def test_missing_architecture_and_hook_metadata(tmp_path: Path) -> None:
    assert "no 'architecture'" in load_error(write(tmp_path, "a.safetensors", meta={}))
    # No hook: loads with hook_name=None (the harness then asks for --hook), or takes the override.
    path = write(tmp_path, "b.safetensors", meta={"architecture": "relu"})
    assert load_sae(path).hook_name is None  # type: ignore[union-attr]
    assert load_sae(path, hook_name=HOOK).hook_name == HOOK  # type: ignore[union-attr]


def test_wrong_shapes_say_expected_and_got(tmp_path: Path) -> None:
    message = load_error(write(tmp_path, W_dec=torch.ones(D_IN, D_SAE)))
    assert "'W_dec' has shape [3, 5], expected [d_sae, d_in] = [5, 3]" in message
    assert "(it looks transposed)" in message
    message = load_error(write(tmp_path, "b.safetensors", b_enc=torch.zeros(4)))
    assert "'b_enc' has shape [4], expected [d_sae] = [5]" in message


def test_nan_and_inf_are_counted(tmp_path: Path) -> None:
    bad = torch.ones(D_SAE, D_IN)
    bad[0, 0], bad[1, 1], bad[2, 2] = float("nan"), float("nan"), float("inf")
    message = load_error(write(tmp_path, W_dec=bad))
    assert "tensor 'W_dec' contains 2 NaN and 1 Inf value(s) out of 15" in message


def test_unknown_architecture_did_you_mean(tmp_path: Path) -> None:
    path = write(tmp_path, meta={"architecture": "jump_relu", "hook_name": HOOK})
    message = load_error(path)
    assert "unknown architecture 'jump_relu'" in message and "Did you mean 'jumprelu'?" in message


def test_topk_needs_k(tmp_path: Path) -> None:
    path = write(tmp_path, meta={"architecture": "topk", "hook_name": HOOK})
    assert "a topk SAE needs k" in load_error(path)
    path = write(tmp_path, "big.safetensors",
                 meta={"architecture": "topk", "hook_name": HOOK, "k": "9"})
    assert "k=9 must be an integer in 1..d_sae=5" in load_error(path)


def test_jumprelu_needs_threshold(tmp_path: Path) -> None:
    path = write(tmp_path, meta={"architecture": "jumprelu", "hook_name": HOOK})
    assert "architecture 'jumprelu' needs tensor 'threshold'" in load_error(path)


def test_extra_tensor_for_wrong_architecture(tmp_path: Path) -> None:
    path = write(tmp_path, threshold=torch.zeros(D_SAE))
    assert "tensor 'threshold' is not used by architecture 'relu'" in load_error(path)


def test_bad_metadata_values(tmp_path: Path) -> None:
    meta = {"architecture": "relu", "hook_name": HOOK, "input_scale": "abc"}
    assert "input_scale='abc' is not a number" in load_error(write(tmp_path, meta=meta))
    meta = {"architecture": "relu", "hook_name": HOOK, "input_scale": "-1"}
    assert "input_scale=-1.0 must be a finite number > 0" in load_error(
        write(tmp_path, "b.safetensors", meta=meta))
    meta = {"architecture": "relu", "hook_name": "blocks.0 resid"}
    assert "is not a TransformerLens hook name" in load_error(
        write(tmp_path, "c.safetensors", meta=meta))


def test_direct_construction_is_validated() -> None:
    with pytest.raises(UserError, match=r"tensor 'W_enc' has dtype torch.int64"):
        SAE(W_enc=torch.ones(D_IN, D_SAE, dtype=torch.long), W_dec=torch.ones(D_SAE, D_IN),
            b_enc=torch.zeros(D_SAE), b_dec=torch.zeros(D_IN), architecture="relu")
    with pytest.raises(UserError, match=r"architecture 'gated' needs tensor 'r_mag'"):
        SAE(**tensors(), architecture="gated")


# --------------------------------------------------------------------------- external formats
def write_saelens(folder: Path, cfg: dict, weights: dict[str, torch.Tensor]) -> Path:
    folder.mkdir()
    (folder / "cfg.json").write_text(json.dumps({"d_in": D_IN, "d_sae": D_SAE, **cfg}))
    save_file(weights, str(folder / "sae_weights.safetensors"))
    return folder


def test_saelens_errors(tmp_path: Path) -> None:
    folder = write_saelens(tmp_path / "a", {"architecture": "transcoder"}, tensors())
    message = load_error(folder)
    assert "architecture 'transcoder' cannot be scored: it is a transcoder" in message
    folder = write_saelens(tmp_path / "a2", {"architecture": "sparse_magic"}, tensors())
    assert "unknown SAELens architecture 'sparse_magic'" in load_error(folder)
    folder = write_saelens(tmp_path / "b", {"architecture": "jumprelu"}, tensors())
    assert "missing tensor(s) 'threshold'" in load_error(folder)
    folder = write_saelens(tmp_path / "c", {"architecture": "topk"}, tensors())
    assert "a topk SAE needs 'k' in cfg.json" in load_error(folder)
    folder = write_saelens(tmp_path / "d", {"normalize_activations": "expected_average_only_in"},
                           tensors())
    assert "scaling factor is stored nowhere" in load_error(folder)
    folder = write_saelens(tmp_path / "e", {"normalize_activations": "layer_norm"}, tensors())
    assert "rescales each input by its own norm" in load_error(folder)
    folder = write_saelens(tmp_path / "f", {"d_in": 7}, tensors())
    assert "cfg.json says d_in=7" in load_error(folder)


@pytest.mark.parametrize("cfg, weights, expected", [
    # issue 13, point 5: each was a crash or a silent misreading
    ({"normalize_activations": "expected_average_only_in", "norm_scaling_factor": "big"}, {},
     "norm_scaling_factor='big' must be a finite number > 0"),
    ({"normalize_activations": "expected_average_only_in", "norm_scaling_factor": [1.0]}, {},
     "must be a finite number > 0"),
    ({}, {"scaling_factor": torch.ones(3, 3)}, "'scaling_factor' has shape [3, 3]"),
    ({}, {"scaling_factor": torch.ones(D_SAE, dtype=torch.int32)}, "dtype torch.int32"),
    ({"apply_b_dec_to_input": "maybe"}, {}, "apply_b_dec_to_input='maybe' must be true or false"),
    ({"apply_b_dec_to_input": 0}, {}, "must be true or false"),
    ({"normalize_activations": 3}, {}, "normalize_activations=3 must be a string"),
])
def test_saelens_bad_cfg_values(tmp_path: Path, cfg, weights, expected) -> None:
    folder = write_saelens(tmp_path / "s", cfg, {**tensors(), **weights})
    assert expected in load_error(folder)


def test_saelens_apply_b_dec_string_false_is_false(tmp_path: Path) -> None:
    folder = write_saelens(tmp_path / "s", {"apply_b_dec_to_input": "false"}, tensors())
    assert load_sae(folder).apply_b_dec_to_input is False
    folder = write_saelens(tmp_path / "t", {"apply_b_dec_to_input": "True"}, tensors())
    assert load_sae(folder).apply_b_dec_to_input is True


def test_dictionary_learning_errors(tmp_path: Path) -> None:
    folder = tmp_path / "dl"
    folder.mkdir()
    torch.save({"encoder.weight": torch.ones(D_SAE, D_IN)}, folder / "ae.pt")
    assert "no config.json next to it" in load_error(folder)
    (folder / "config.json").write_text(json.dumps({"trainer": {"dict_class": "AutoEncoderTopk"}}))
    message = load_error(folder)
    assert "unknown dictionary_learning dict_class 'AutoEncoderTopk'" in message
    assert "Did you mean 'AutoEncoderTopK'?" in message
    (folder / "config.json").write_text(json.dumps({"trainer": {"dict_class": "AutoEncoder"}}))
    assert "missing key(s) 'encoder.bias', 'decoder.weight', 'bias'" in load_error(folder)


def test_sparsify_unsupported_variants(tmp_path: Path) -> None:
    folder = tmp_path / "layers.1"
    folder.mkdir()
    (folder / "cfg.json").write_text(json.dumps({"d_in": D_IN, "k": 2, "transcode": True}))
    save_file({"encoder.weight": torch.ones(D_SAE, D_IN)}, str(folder / "sae.safetensors"))
    assert "it is a transcoder" in load_error(folder)
    (folder / "cfg.json").write_text(json.dumps({"d_in": D_IN, "k": 2}))
    assert "missing tensor(s) 'encoder.bias', 'W_dec', 'b_dec'" in load_error(folder)
    save_file({"encoder.weight": torch.ones(D_SAE, D_IN), "encoder.bias": torch.zeros(D_SAE),
               "W_dec": torch.ones(D_SAE, D_IN), "b_dec": torch.zeros(D_IN)},
              str(folder / "sae.safetensors"))
    (folder / "cfg.json").write_text(json.dumps({"d_in": D_IN, "k": "two"}))
    assert "k='two' is not an integer" in load_error(folder)


def test_bundle_errors(tmp_path: Path) -> None:
    save_native(SAE(**tensors(), architecture="relu", hook_name=HOOK), tmp_path / "a.safetensors")

    def manifest(entries: object) -> str:
        (tmp_path / "bundle.json").write_text(json.dumps({"saes": entries}))
        return load_error(tmp_path)

    node = f"{HOOK}@END"
    assert "listed twice" in manifest([{"node": node, "path": "a.safetensors"},
                                       {"node": node, "path": "a.safetensors"}])
    assert "SAE file not found" in manifest([{"node": node, "path": "gone.safetensors"}])
    message = manifest([{"node": "blocks.0.hook_resid_post", "path": "a.safetensors"}])
    assert "entry 0: cannot parse node" in message
    assert "non-empty list under 'saes'" in manifest([])
    assert "must be an object" in manifest(["a.safetensors"])
    (tmp_path / "inner").mkdir()
    (tmp_path / "inner" / "bundle.json").write_text(
        json.dumps({"saes": [{"node": node, "path": "../a.safetensors"}]}))
    assert "bundles cannot be nested" in manifest([{"node": node, "path": "inner"}])
    with pytest.raises(UserError, match="cannot be overridden for a bundle"):
        load_sae(tmp_path / "inner", hook_name=HOOK)
