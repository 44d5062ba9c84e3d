"""The SAE contract: one immutable object every file format is adapted to.

Shapes follow SAELens: ``W_enc [d_in, d_sae]``, ``W_dec [d_sae, d_in]``, ``b_enc [d_sae]``,
``b_dec [d_in]``. The weights live in a *normalised* space: an input ``x`` in the model's
activation space is multiplied by ``input_scale`` before encoding and the reconstruction is divided
by it after decoding, so `encode`/`decode`/`forward` always speak the original activation space.
(SAELens' "expected_average_only_in" normalisation, and any fixed rescaling, map to this.)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import torch
from torch import Tensor

from sae_bench.errors import UserError
from sae_bench.models.nodes import Node
from sae_bench.sae.architectures import EXTRA_TENSORS, encode_normalized
from sae_bench.sae.validation import shape_str, validate

_TENSOR_FIELDS = ("W_enc", "W_dec", "b_enc", "b_dec", *EXTRA_TENSORS)


@dataclass(frozen=True, eq=False, repr=False)
class SAE:
    """A sparse autoencoder, its hook point and where it came from.

    Tensors (all on one device and dtype; treat them as read-only):
      W_enc [d_in, d_sae], W_dec [d_sae, d_in], b_enc [d_sae], b_dec [d_in];
      threshold [d_sae] (jumprelu, batchtopk; a scalar is broadcast), r_mag [d_sae] and
      b_mag [d_sae] (gated, whose gate bias b_gate is stored as b_enc).
    """

    W_enc: Tensor
    W_dec: Tensor
    b_enc: Tensor
    b_dec: Tensor
    architecture: str
    hook_name: str | None = None
    head: int | None = None
    position: str | None = None
    input_scale: float = 1.0
    # SAELens' flag: subtract b_dec from the (normalised) input before the encoder.
    apply_b_dec_to_input: bool = True
    k: int | float | None = None
    threshold: Tensor | None = None
    r_mag: Tensor | None = None
    b_mag: Tensor | None = None
    format: str = "memory"
    source_path: str | None = None
    sha256: str | None = None
    file_sha256: Mapping[str, str] = field(default_factory=dict)
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        ref = self.W_enc
        if isinstance(ref, Tensor) and ref.is_floating_point():
            for name in _TENSOR_FIELDS:
                value = getattr(self, name)
                if isinstance(value, Tensor):
                    # Gradient-free tensors on W_enc's device/dtype: loaders may hand over bf16
                    # biases next to fp32 weights, or 0-d int buffers (dictionary_learning).
                    # The SAE takes the tensors over; callers must not modify them afterwards.
                    value = value.detach().to(device=ref.device, dtype=ref.dtype)
                    if name == "threshold" and value.numel() == 1 and ref.ndim == 2:
                        value = value.reshape(()).expand(ref.shape[1])
                    object.__setattr__(self, name, value.contiguous())
        object.__setattr__(self, "input_scale", _as_float(self.input_scale))
        if isinstance(self.k, float) and self.k.is_integer():
            object.__setattr__(self, "k", int(self.k))  # JSON/.pt may give 32.0 for 32
        validate(self)
        object.__setattr__(self, "file_sha256", MappingProxyType(dict(self.file_sha256)))
        object.__setattr__(self, "metadata", MappingProxyType(dict(self.metadata)))

    # ----------------------------------------------------------------- shape and identity
    @property
    def d_in(self) -> int:
        return int(self.W_enc.shape[0])

    @property
    def d_sae(self) -> int:
        return int(self.W_enc.shape[1])

    @property
    def dtype(self) -> torch.dtype:
        return self.W_enc.dtype

    @property
    def device(self) -> torch.device:
        return self.W_enc.device

    @property
    def b_gate(self) -> Tensor:
        """Gate bias of a gated SAE (the same tensor as ``b_enc``). [d_sae]"""
        return self.b_enc

    @property
    def node(self) -> Node | None:
        """The node this SAE sits at, when both hook and position are known."""
        if self.hook_name is None or self.position is None:
            return None
        return Node(hook=self.hook_name, position=self.position, head=self.head)

    def tensors(self) -> dict[str, Tensor]:
        """Every tensor of the SAE by its native-format name (extras only when present)."""
        out = {name: getattr(self, name) for name in _TENSOR_FIELDS}
        return {name: tensor for name, tensor in out.items() if tensor is not None}

    # ----------------------------------------------------------------- maths
    def normalize(self, x: Tensor) -> Tensor:
        """Activation space -> the SAE's input space: ``x * input_scale``. [..., d_in]"""
        return x * self.input_scale

    def denormalize(self, x: Tensor) -> Tensor:
        """The SAE's output space -> activation space: ``x / input_scale``. [..., d_in]"""
        return x / self.input_scale

    def encode(self, x: Tensor) -> Tensor:
        """Latents ``f [..., d_sae]`` of activations ``x [..., d_in]`` (original space)."""
        self._check_input(x, self.d_in, "encode", "d_in")
        return encode_normalized(self, self.normalize(x.to(self.dtype)))

    def decode(self, f: Tensor) -> Tensor:
        """Reconstruction ``x̂ [..., d_in]`` (original space) of latents ``f [..., d_sae]``."""
        self._check_input(f, self.d_sae, "decode", "d_sae")
        return self.denormalize(f.to(self.dtype) @ self.W_dec + self.b_dec)

    def forward(self, x: Tensor) -> Tensor:
        """``decode(encode(x))``: ``[..., d_in] -> [..., d_in]``."""
        return self.decode(self.encode(x))

    __call__ = forward

    def decoder_directions(self, unit: bool = False) -> Tensor:
        """What one unit of each latent adds to the reconstruction, in activation space.

        Returns ``W_dec / input_scale`` ``[d_sae, d_in]``; with ``unit=True`` each row is
        scaled to norm 1 (all-zero rows stay zero).
        """
        directions = self.W_dec / self.input_scale
        if unit:
            norms = directions.norm(dim=-1, keepdim=True)
            directions = directions / torch.where(norms > 0, norms, torch.ones_like(norms))
        return directions

    @property
    def output_bias(self) -> Tensor:
        """The reconstruction of all-zero latents, in activation space: ``b_dec / s``. [d_in]"""
        return self.b_dec / self.input_scale

    # ----------------------------------------------------------------- checks and copies
    def check_width(self, width: int, node_name: str) -> None:
        """Refuse an SAE whose input width differs from the node it is applied at."""
        if int(width) != self.d_in:
            source = f" ({self.source_path})" if self.source_path else ""
            if ":" in node_name.split("@")[0] and self.d_in % int(width) == 0:
                # A concatenated-heads SAE (e.g. SAELens' gpt2-small-hook-z-kk) at one head.
                layer = node_name.split(":")[0] + "@" + node_name.split("@")[-1]
                raise UserError(
                    f"SAE{source} reads all {self.d_in // int(width)} heads concatenated "
                    f"(d_in={self.d_in}) but node {node_name} is one head (width {width}); "
                    f"score it at the layer node {layer} (drop the head): a head's slice is not "
                    "exact, since every latent's pre-activation sums over all heads."
                )
            raise UserError(
                f"SAE{source} has d_in={self.d_in} but node {node_name} has width {width}; "
                "use an SAE trained on this hook (and head), or pick the matching node."
            )

    def replace(self, **changes: Any) -> SAE:
        """A copy with some fields changed (re-validated), e.g. ``sae.replace(position='END')``."""
        return dataclasses.replace(self, **changes)

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> SAE:
        """A copy on another device and/or floating dtype."""
        moved = {
            name: tensor.to(device=device, dtype=dtype) for name, tensor in self.tensors().items()
        }
        return self.replace(**moved)

    def _check_input(self, x: Tensor, width: int, method: str, label: str) -> None:
        if x.ndim == 0 or x.shape[-1] != width:
            raise UserError(
                f"SAE.{method} got a tensor of shape {shape_str(x.shape)}; its last dimension "
                f"must be {label}={width}."
            )

    def __repr__(self) -> str:
        where = f"{self.hook_name}" + (f":{self.head}" if self.head is not None else "")
        where += f"@{self.position}" if self.position else ""
        extras = f", k={self.k}" if self.k is not None else ""
        scale = f", input_scale={self.input_scale:g}" if self.input_scale != 1.0 else ""
        return (
            f"SAE({self.architecture}, d_in={self.d_in}, d_sae={self.d_sae}{extras}{scale}, "
            f"at={where or None}, format={self.format}, source={self.source_path})"
        )


def _as_float(value: Any) -> Any:
    """Accept 0-d tensors / numpy scalars for input_scale; leave junk for validation to name."""
    if isinstance(value, Tensor) and value.numel() == 1:
        return float(value.item())
    if isinstance(value, bool) or value is None:
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return value
