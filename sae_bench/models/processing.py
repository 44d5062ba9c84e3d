"""Model weight processing: which TransformerLens weight transforms a model was loaded with.

TransformerLens can load a checkpoint with weight transforms that leave the logits' softmax
unchanged but change hook activations: ``center_writing_weights`` makes every write into the
residual stream zero-mean (so ``hook_resid_*``, ``attn_out`` and ``mlp_out`` change),
``refactor_factored_attn_matrices`` changes the basis of q/k/v/z, ``fold_value_biases`` moves
b_V into b_O (z changes by −b_V). An SAE only reads the activations it was trained on, so the
benchmark must run the model processed the way the SAE declares.

Declarations, by source:
- SAELens: ``metadata.model_from_pretrained_kwargs``; SAELens loads models with
  ``HookedTransformer.from_pretrained_no_processing(**kwargs)`` (sae_lens/load_model.py), so an
  empty or missing dict means *no* processing.
- sparsify and dictionary_learning train on raw Hugging Face hidden states: no processing.
- native files: ``model_processing`` in the metadata JSON (written by ``train-sae``); absent means
  "trained on this benchmark's model as loaded" (no declaration).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sae_bench.errors import UserError

FLAGS = (
    "fold_ln",
    "center_writing_weights",
    "center_unembed",
    "refactor_factored_attn_matrices",
    "fold_value_biases",
)
Processing = dict[str, bool]

# from_pretrained_no_processing: every transform off.
RAW: Processing = dict.fromkeys(FLAGS, False)
# Makelov et al. (2024): fold_ln, center_writing_weights, center_unembed and
# refactor_factored_attn_matrices on; fold_value_biases is from_pretrained's default (on).
PAPER: Processing = dict.fromkeys(FLAGS, True)

# Transforms that never change the activations at hooks the benchmark reads, nor the logit
# difference: fold_ln folds LayerNorm scales into the next weights (q/k/v, resid unchanged);
# center_unembed shifts every logit at a position by the same constant (LD unchanged).
_INVISIBLE = ("fold_ln", "center_unembed")


def from_kwargs(kwargs: Any, where: str) -> Processing:
    """The processing of ``from_pretrained_no_processing(**kwargs)``; unknown keys are refused
    when they change weights we cannot reproduce (anything not in `FLAGS` that is not a plain
    loading option)."""
    if kwargs is None:
        return dict(RAW)
    if not isinstance(kwargs, Mapping):
        raise UserError(f"{where}: model_from_pretrained_kwargs must be a JSON object, got "
                        f"{type(kwargs).__name__}; fix the config.")
    out = dict(RAW)
    for key, value in kwargs.items():
        if key in FLAGS:
            out[key] = as_bool(value, f"{where}: model_from_pretrained_kwargs.{key}")
        elif key not in _LOADING_OPTIONS:
            raise UserError(
                f"{where}: model_from_pretrained_kwargs.{key}={value!r} is a model option this "
                f"benchmark cannot reproduce (it reproduces {', '.join(FLAGS)}); score the SAE "
                "with a model loaded the same way outside this tool."
            )
    return out


# Options that choose where/how a model is loaded, not what its activations are.
_LOADING_OPTIONS = ("n_devices", "device", "dtype", "torch_dtype", "move_to_device",
                    "default_prepend_bos", "trust_remote_code", "first_n_layers")


def as_bool(value: Any, label: str) -> bool:
    """A JSON/TOML-ish boolean: true/false, or the strings "true"/"false" (any case)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise UserError(f"{label}={value!r} must be true or false; fix the config.")


def parse(value: Any, where: str) -> Processing:
    """A stored declaration (a JSON object of flags) -> Processing; missing flags are off."""
    return from_kwargs(value, where)


def equivalent(a: Processing, b: Processing) -> bool:
    """Same activations at every hook and the same logit difference."""
    return all(a[f] == b[f] for f in FLAGS if f not in _INVISIBLE)


def describe(p: Processing) -> str:
    on = [f for f in FLAGS if p[f]]
    return "+".join(on) if on else "none"


def declared(metadata: Mapping[str, Any]) -> Processing | None:
    """The processing an SAE's metadata declares (see module docstring), or None."""
    value = metadata.get("model_processing")
    if value is None:
        return None
    return parse(value, "SAE metadata model_processing")


def required(declarations: list[tuple[str, Mapping[str, Any]]]) -> Processing | None:
    """The one processing a run's SAEs need: ``[(name, sae.metadata), ...]`` -> flags or None.

    SAEs that declare nothing accept the model as loaded by default. Two SAEs that need
    differently processed models cannot share one run (they share one clean forward pass).
    """
    found: list[tuple[str, Processing]] = []
    for name, metadata in declarations:
        flags = declared(metadata)
        if flags is not None and not any(equivalent(flags, seen) for _, seen in found):
            found.append((name, flags))
    if len(found) > 1:
        (a, pa), (b, pb) = found[:2]
        raise UserError(
            f"the SAEs need differently processed models ({a}: {describe(pa)}; {b}: "
            f"{describe(pb)}), and one run shares one model; score them in separate runs."
        )
    return found[0][1] if found else None


def of_library_config(config: dict[str, Any], path: Path | str) -> dict[str, bool] | None:
    """The processing of an SAE saved by dictionary_learning or sparsify: raw, as those libraries
    train on raw Hugging Face hidden states; our exports (`sae.library_save`) carry their own
    declaration, or none when the SAE declared none."""
    if "sae_bench_hook_name" in config:
        declared = config.get("sae_bench_model_processing")
        return None if declared is None else parse(declared, str(path))
    return dict(RAW)
