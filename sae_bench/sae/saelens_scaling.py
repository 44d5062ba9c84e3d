"""SAELens activation normalisation, read from the folder and folded into the contract.

SAELens' `ActivationScaler` (sae_lens/training/activation_scaler.py) maps activations before the
SAE and back after it: ``scale`` multiplies by ``scaling_factor`` and then whitens,
``z = (x·s − mean) @ M``; ``unscale`` inverts both. Finished training runs fold both maps into the
weights and set ``normalize_activations="none"``; *checkpoints* keep them beside ``cfg.json``:
``activation_scaler.json`` (``{"scaling_factor": s, "has_whitening": bool}``) and
``activation_whitening.safetensors`` (``mean``, ``matrix``, ``inverse_matrix``).

- ``expected_average_only_in``: a constant s -> our ``input_scale`` (exact).
- ``covariance_whitening``: a fixed affine map, folded into the weights exactly as SAELens'
  ``SAE.fold_activation_whitening`` does (W_enc ← M W_enc, W_dec ← W_dec M⁻¹,
  b_dec ← b_dec M⁻¹ + mean, and b_enc shifted when b_dec is not subtracted from the input).
- ``layer_norm`` / ``constant_norm_rescale``: a different scale for every input, which the
  contract's one fixed affine map cannot express: refused.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from sae_bench.errors import UserError
from sae_bench.sae.files import read_json, read_safetensors

SCALER_FILE = "activation_scaler.json"
WHITENING_FILE = "activation_whitening.safetensors"
MODES = ("none", "expected_average_only_in", "covariance_whitening")


def normalize_mode(value: Any, cfg_path: Path) -> str:
    """cfg.json's ``normalize_activations`` (pre-6.0 booleans mapped as SAELens maps them)."""
    if value is None or value is False:
        return "none"
    if value is True:
        return "expected_average_only_in"
    if not isinstance(value, str):
        raise UserError(f"{cfg_path}: normalize_activations={value!r} must be a string such as "
                        "'none'; fix cfg.json.")
    if value in ("layer_norm", "constant_norm_rescale"):
        raise UserError(
            f"{cfg_path}: normalize_activations={value!r} rescales each input by its own norm, "
            "which the benchmark's fixed affine SAE contract cannot express; use an SAE trained "
            "with 'none', 'expected_average_only_in' or 'covariance_whitening'."
        )
    if value not in MODES:
        raise UserError(f"{cfg_path}: unknown normalize_activations={value!r} (known: "
                        f"{', '.join(MODES)}); fix cfg.json.")
    return value


def positive_number(value: Any, label: str) -> float:
    """A finite number > 0 (JSON may give a string); anything else is a one-line error."""
    number: float | None = None
    if not isinstance(value, bool):
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = None
    if number is None or not math.isfinite(number) or number <= 0:
        raise UserError(f"{label}={value!r} must be a finite number > 0; fix the config.")
    return number


def input_scale(mode: str, cfg: dict[str, Any], override: float | None, folder: Path) -> float:
    """The constant s the weights expect activations to be multiplied by."""
    if override is not None:
        return override
    scaler = _scaler(folder)
    stored = scaler.get("scaling_factor")
    if mode != "expected_average_only_in":
        # A scaler factor is only applied by SAELens when training normalised activations.
        return 1.0
    if cfg.get("norm_scaling_factor") is not None:
        return positive_number(cfg["norm_scaling_factor"], f"{folder / 'cfg.json'}: "
                                                           "norm_scaling_factor")
    if stored is not None:
        return positive_number(stored, f"{folder / SCALER_FILE}: scaling_factor")
    raise UserError(
        f"{folder / 'cfg.json'}: normalize_activations='expected_average_only_in' but the "
        f"scaling factor is stored nowhere (no norm_scaling_factor, no {SCALER_FILE}); pass "
        "--input-scale (sqrt(d_in) / mean ||x|| over the training data) or fold it into the "
        "weights with SAELens' fold_activation_norm_scaling_factor."
    )


def _scaler(folder: Path) -> dict[str, Any]:
    path = folder / SCALER_FILE
    return read_json(path, "SAELens activation scaler") if path.exists() else {}


def fold_whitening(weights: dict[str, Any], folder: Path, apply_b_dec: bool) -> None:
    """Fold the stored whitening (z = (x − mean) @ M) into the weights, in float64."""
    path = folder / WHITENING_FILE
    if not path.exists():
        raise UserError(
            f"{folder / 'cfg.json'}: normalize_activations='covariance_whitening' but "
            f"{WHITENING_FILE} is missing, so the whitening map is unknown; copy it from the "
            "training checkpoint, or use the final SAE (SAELens folds it into the weights)."
        )
    tensors, _ = read_safetensors(path)
    missing = [k for k in ("mean", "matrix", "inverse_matrix") if k not in tensors]
    if missing:
        raise UserError(f"{path}: missing tensor(s) {', '.join(missing)}; re-save the "
                        "checkpoint with SAELens.")
    d_in = int(weights["W_enc"].shape[0])
    mean, M, M_inv = (tensors[k].double() for k in ("mean", "matrix", "inverse_matrix"))
    if mean.shape != (d_in,) or M.shape != (d_in, d_in) or M_inv.shape != (d_in, d_in):
        raise UserError(f"{path}: whitening shapes do not match d_in={d_in}; the files come from "
                        "different runs.")
    dtype = weights["W_enc"].dtype
    W_enc = M @ weights["W_enc"].double()
    if not apply_b_dec:
        shift = mean @ W_enc
        weights["b_enc"] = (weights["b_enc"].double() - shift).to(dtype)
        if "b_mag" in weights:  # gated: the magnitude path reads the same shifted input
            r = weights["r_mag"].double().exp()
            weights["b_mag"] = (weights["b_mag"].double() - shift * r).to(dtype)
    weights["W_enc"] = W_enc.to(dtype)
    weights["W_dec"] = (weights["W_dec"].double() @ M_inv).to(dtype)
    weights["b_dec"] = (weights["b_dec"].double() @ M_inv + mean).to(dtype)
