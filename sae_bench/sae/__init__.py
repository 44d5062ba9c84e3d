"""SAE contract and loaders: every file format is adapted to one immutable `SAE` object.

Public API: `SAE` (the contract), `SAEBundle` (Node -> SAE), `load_sae` (format detection),
`save_native` (write the native .safetensors format), `save_bundle` (one native file per node
and the manifest), `ARCHITECTURES`, `FORMATS`.
"""

from sae_bench.sae.architectures import ARCHITECTURES
from sae_bench.sae.base import SAE
from sae_bench.sae.bundle import SAEBundle, save_bundle
from sae_bench.sae.load import FORMATS, detect_format, load_sae
from sae_bench.sae.native import save_native

__all__ = [
    "ARCHITECTURES",
    "FORMATS",
    "SAE",
    "SAEBundle",
    "detect_format",
    "load_sae",
    "save_bundle",
    "save_native",
]
