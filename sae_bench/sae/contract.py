"""What the encoders and the validation read from an SAE, as a structural type.

`sae_bench.sae.base.SAE` satisfies it. The encoders (`architectures`) and the checks
(`validation`) are typed against this protocol rather than the `SAE` class, because `SAE`
calls them: importing the class back (even under TYPE_CHECKING) made an import cycle
base -> architectures -> base, which the layout test (tests/test_import_cycles.py) refuses.
"""

from __future__ import annotations

from typing import Protocol

from torch import Tensor


class SAEParams(Protocol):
    """The tensors, hook point and scalars of one SAE (shapes as in `SAE`'s docstring)."""

    @property
    def W_enc(self) -> Tensor: ...  # [d_in, d_sae]
    @property
    def W_dec(self) -> Tensor: ...  # [d_sae, d_in]
    @property
    def b_enc(self) -> Tensor: ...  # [d_sae]
    @property
    def b_dec(self) -> Tensor: ...  # [d_in]
    @property
    def architecture(self) -> str: ...
    @property
    def hook_name(self) -> str | None: ...
    @property
    def head(self) -> int | None: ...
    @property
    def position(self) -> str | None: ...
    @property
    def input_scale(self) -> float: ...
    @property
    def apply_b_dec_to_input(self) -> bool: ...
    @property
    def k(self) -> int | float | None: ...
    @property
    def threshold(self) -> Tensor | None: ...  # [d_sae]
    @property
    def r_mag(self) -> Tensor | None: ...  # [d_sae]
    @property
    def b_mag(self) -> Tensor | None: ...  # [d_sae]
    @property
    def source_path(self) -> str | None: ...

    def tensors(self) -> dict[str, Tensor]: ...
