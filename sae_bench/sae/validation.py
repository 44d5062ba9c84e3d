"""Checks that turn a malformed SAE into one clear `UserError` (never a shape crash later).

`validate` runs on every `SAE` construction, so each loader gets the same checks for free:
shapes, dtypes, NaN/Inf, the extras each architecture needs, k, input_scale, hook metadata.
"""

from __future__ import annotations

import math
import re

import torch
from torch import Tensor

from sae_bench.errors import UserError
from sae_bench.models.nodes import HEAD_HOOKS, Node
from sae_bench.sae.architectures import EXTRA_TENSORS, REQUIRED_EXTRAS, check_architecture
from sae_bench.sae.contract import SAEParams

_HOOK_NAME = re.compile(r"^[A-Za-z0-9_.]+$")
_ROLE = re.compile(r"^[A-Za-z0-9_+]+$")
# Dtypes an SAE can compute in. float8 counts as floating point in torch but has no isfinite,
# matmul or most other kernels on CPU, so it is refused here rather than crashing later.
_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def _check_dtype(name: str, tensor: Tensor, where: str) -> None:
    if tensor.dtype not in _DTYPES:
        raise UserError(
            f"{where}: tensor {name!r} has dtype {tensor.dtype}; "
            "re-save it as float32, float16 or bfloat16."
        )


def shape_str(shape: tuple[int, ...] | torch.Size) -> str:
    return "[" + ", ".join(str(int(s)) for s in shape) + "]"


def check_finite(name: str, tensor: Tensor, where: str) -> None:
    """Refuse NaN/Inf weights, naming the tensor and how many entries are bad."""
    if tensor.is_floating_point():
        bad = ~torch.isfinite(tensor)
        if bool(bad.any()):
            n_nan = int(torch.isnan(tensor).sum())
            n_inf = int(bad.sum()) - n_nan
            raise UserError(
                f"{where}: tensor {name!r} contains {n_nan} NaN and {n_inf} Inf value(s) out of "
                f"{tensor.numel()}; the SAE is broken (diverged training?): re-train or re-export."
            )


def _check_shape(name: str, tensor: Tensor, expected: tuple[int, ...], labels: str,
                 where: str) -> None:
    if tuple(tensor.shape) == expected:
        return
    hint = ""
    if len(expected) == 2 and tuple(tensor.shape) == expected[::-1]:
        hint = " (it looks transposed)"
    raise UserError(
        f"{where}: tensor {name!r} has shape {shape_str(tensor.shape)}, expected {labels} = "
        f"{shape_str(expected)}{hint}; re-export the SAE with that layout."
    )


def validate(sae: SAEParams) -> None:
    """All structural checks of the contract; raises `UserError` on the first problem."""
    where = f"SAE {sae.source_path}" if sae.source_path else "SAE"
    check_architecture(sae.architecture)
    core = {"W_enc": sae.W_enc, "W_dec": sae.W_dec, "b_enc": sae.b_enc, "b_dec": sae.b_dec}
    for name, tensor in core.items():
        if not isinstance(tensor, Tensor):
            raise UserError(f"{where}: {name} is a {type(tensor).__name__}, not a tensor; store "
                            "it as a tensor.")
        _check_dtype(name, tensor, where)
    if sae.W_enc.ndim != 2:
        raise UserError(
            f"{where}: tensor 'W_enc' has shape {shape_str(sae.W_enc.shape)}, expected "
            "2 dimensions [d_in, d_sae]; re-export the SAE with that layout."
        )
    d_in, d_sae = (int(s) for s in sae.W_enc.shape)
    if d_in == 0 or d_sae == 0:
        raise UserError(f"{where}: W_enc has an empty shape {shape_str(sae.W_enc.shape)}; "
                        "the file holds no SAE weights: re-export it.")
    _check_shape("W_dec", sae.W_dec, (d_sae, d_in), "[d_sae, d_in]", where)
    _check_shape("b_enc", sae.b_enc, (d_sae,), "[d_sae]", where)
    _check_shape("b_dec", sae.b_dec, (d_in,), "[d_in]", where)

    required = REQUIRED_EXTRAS[sae.architecture]
    for name in EXTRA_TENSORS:
        tensor = getattr(sae, name)
        if name in required and tensor is None:
            raise UserError(
                f"{where}: architecture {sae.architecture!r} needs tensor {name!r} "
                f"[d_sae] but it is missing; add it (shape [{d_sae}])."
            )
        if name not in required and tensor is not None:
            raise UserError(
                f"{where}: tensor {name!r} is not used by architecture {sae.architecture!r}; "
                "remove it or fix the architecture name."
            )
        if tensor is not None:
            _check_dtype(name, tensor, where)
            _check_shape(name, tensor, (d_sae,), "[d_sae]", where)

    for name, tensor in sae.tensors().items():
        check_finite(name, tensor, where)
    _check_scalars(sae, where, d_sae)


def _check_scalars(sae: SAEParams, where: str, d_sae: int) -> None:
    if sae.architecture == "topk":
        if sae.k is None:
            raise UserError(
                f"{where}: a topk SAE needs k (the number of active latents) but none is given; "
                "add 'k' to the metadata/config."
            )
        if isinstance(sae.k, bool) or not isinstance(sae.k, int) or not 1 <= sae.k <= d_sae:
            raise UserError(f"{where}: k={sae.k!r} must be an integer in 1..d_sae={d_sae}; fix "
                            "k in the metadata/config.")
    elif sae.k is not None and (
        isinstance(sae.k, bool) or not isinstance(sae.k, int | float) or not sae.k > 0
    ):
        raise UserError(f"{where}: k={sae.k!r} must be a positive number; fix k in the "
                        "metadata/config.")
    scale = sae.input_scale
    if isinstance(scale, bool) or not isinstance(scale, int | float) or not (
        math.isfinite(scale) and scale > 0
    ):
        raise UserError(f"{where}: input_scale={scale!r} must be a finite number > 0; fix it "
                        "in the metadata/config or pass --input-scale.")
    if sae.hook_name is not None and (
        not isinstance(sae.hook_name, str) or not _HOOK_NAME.match(sae.hook_name)
    ):
        raise UserError(
            f"{where}: hook_name {sae.hook_name!r} is not a TransformerLens hook name"
            "; fix it (e.g. 'blocks.3.hook_resid_post') or pass --hook."
        )
    if sae.head is not None and (
        isinstance(sae.head, bool) or not isinstance(sae.head, int) or sae.head < 0
    ):
        raise UserError(f"{where}: head={sae.head!r} must be a non-negative integer or absent; "
                        "fix the head in the metadata/config.")
    if sae.head is not None and sae.hook_name is not None and not Node(
        sae.hook_name, "END").is_head_hook:
        raise UserError(
            f"{where}: head={sae.head} but hook {sae.hook_name!r} has no head axis; remove the "
            f"head, or use a per-head hook ({', '.join(HEAD_HOOKS)})."
        )
    if sae.position is not None and (
        not isinstance(sae.position, str) or not _ROLE.match(sae.position)
    ):
        raise UserError(f"{where}: position {sae.position!r} must be a role name like 'END'; "
                        "fix it in the metadata (`sae-bench nodes` lists the roles).")
