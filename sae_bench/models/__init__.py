"""Models and where to read them: the registry (`load_model`), nodes (hook, head, role position),
TransformerLens weight processing, and the two models the project trains and ships (`ioi_tiny`,
`ioi_circuit`; their weights stay in `sae_bench/assets/`).

`sae_bench.models.load_model` is the public entry point the model cards document; it lives in
`sae_bench.models.registry` (which imports nothing heavy: models load lazily).
"""

from sae_bench.models.registry import DEFAULT_PROCESSING, load_model

__all__ = ["DEFAULT_PROCESSING", "load_model"]
