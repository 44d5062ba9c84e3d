"""On-disk cache of supervised dictionaries and of the fit-prompt activations they come from,
keyed by everything that determines them.

Key: model name + weight fingerprint, node, task name + version, seed, number of fit prompts, and
the fit method (dictionaries) or "activations". The activations are kept because every SAE
evaluation ranks latents on the fit prompts: without them a fresh process repeats the fit
prompts' forward pass (GPT-2 Small, 20,000 prompts: about 5 minutes on 2 cores) even when the
dictionaries are cached. Files are safetensors written atomically, so an interrupted run never
leaves a half-written entry that a later run would trust.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save

from sae_bench.dictionaries import SupervisedDictionary
from sae_bench.io import write_bytes_atomic


def default_cache_dir() -> Path:
    env = os.environ.get("SAE_BENCH_CACHE")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "sae_bench"


def model_fingerprint(model) -> str:
    """A cheap, stable identity of a model's weights (retraining ioi-tiny invalidates the cache)."""
    h = hashlib.sha256(json.dumps(model.cfg.to_dict(), sort_keys=True, default=str).encode())
    for name, param in sorted(model.state_dict().items()):
        if param.dtype.is_floating_point and param.numel():
            flat = param.detach().flatten()
            h.update(name.encode())
            h.update(flat[:: max(1, flat.numel() // 256)].float().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


# Part of every key. Bumped whenever cached entries would be computed differently, even only at
# float rounding (2: fit activations from `collect.node_activations`), so a results file never
# depends on which version filled the cache.
CACHE_FORMAT = 2


class DictionaryCache:
    def __init__(self, root: Path | str | None = None):
        self.root = Path(root) if root is not None else default_cache_dir()

    @staticmethod
    def key(**parts) -> str:
        blob = json.dumps({"cache_format": CACHE_FORMAT, **parts}, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:32]

    def _path(self, key: str, kind: str = "dictionaries") -> Path:
        return self.root / kind / f"{key}.safetensors"

    def get_activations(self, key: str) -> torch.Tensor | None:
        """Cached activations [n_fit, width], or None (missing or unreadable: recompute)."""
        try:
            return load_file(str(self._path(key, "activations")))["activations"]
        except (SafetensorError, OSError, ValueError, KeyError):
            return None

    def put_activations(self, key: str, activations: torch.Tensor, **meta: str) -> None:
        write_bytes_atomic(self._path(key, "activations"),
                           save({"activations": activations.contiguous()}, metadata=meta))

    def get(self, key: str) -> SupervisedDictionary | None:
        path = self._path(key)
        if not path.exists():
            return None
        try:
            tensors = load_file(str(path))
            with safe_open(str(path), framework="pt") as fh:
                meta = fh.metadata()
        except (SafetensorError, OSError, ValueError):
            return None  # corrupt entry: recompute and overwrite
        attrs = json.loads(meta["attributes"])
        return SupervisedDictionary(
            method=meta["method"],
            mean=tensors["mean"],
            features={a: tensors[f"features.{a}"] for a in attrs},
            present={a: tensors[f"present.{a}"].bool() for a in attrs},
        )

    def put(self, key: str, dictionary: SupervisedDictionary, **meta: str) -> None:
        tensors = {"mean": dictionary.mean.contiguous()}
        for a in dictionary.features:
            tensors[f"features.{a}"] = dictionary.features[a].contiguous()
            tensors[f"present.{a}"] = dictionary.present[a].to(torch.uint8)
        metadata = {
            "method": dictionary.method,
            "attributes": json.dumps(list(dictionary.features)),
            **meta,
        }
        write_bytes_atomic(self._path(key), save(tensors, metadata=metadata))
