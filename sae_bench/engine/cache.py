"""On-disk cache of supervised dictionaries and of the fit-prompt activations they come from,
keyed by everything that determines them.

Key: model name + weight fingerprint, node, task name + version, seed, number of fit prompts, and
the fit method (dictionaries) or "activations"; the LRC dictionary's key adds the batch size (its
Jacobian is averaged batch by batch, so the batch size moves it at float rounding) and its prompt
counts, and its entry carries its fit record. The activations are kept because every SAE
evaluation ranks latents on the fit prompts: without them a fresh process repeats the fit
prompts' forward pass (GPT-2 Small, 20,000 prompts: about 5 minutes on 2 cores) even when the
dictionaries are cached. Files are safetensors written atomically, so an interrupted run never
leaves a half-written entry, and each carries a sha256 of its contents that is checked on every
read, so a changed entry (a flipped bit, a hand edit) is rebuilt rather than trusted.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file

from sae_bench.fileio.atomic import remove_stale_temp_files, write_bytes_atomic
from sae_bench.fileio.canonical import safetensors_bytes
from sae_bench.sae.files import one_line
from sae_bench.truth.dictionaries import SupervisedDictionary


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
# float rounding (2: fit activations from `collect.node_activations`), or stored differently
# (3: content hash in every entry), so a results file never depends on which version filled the
# cache.
CACHE_FORMAT = 3
HASH_KEY = "content_sha256"


def content_hash(tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str]) -> str:
    """sha256 of everything an entry holds: metadata (but the hash itself), then each tensor's
    name, dtype, shape and bytes, in name order. A flipped bit anywhere changes it."""
    h = hashlib.sha256()
    meta = {k: v for k, v in metadata.items() if k != HASH_KEY}
    h.update(json.dumps(meta, sort_keys=True).encode())
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"\0{name}\0{t.dtype}\0{list(t.shape)}\0".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


class CorruptEntry(Exception):
    """A cache file that exists but cannot be trusted; its message says why."""


def _print_warning(line: str) -> None:
    print(line, file=sys.stderr)


class DictionaryCache:
    """Entries are verified on every read: a file that does not parse, lacks its content hash,
    or whose hash does not match its contents is reported in one stderr line and treated as
    missing, so the caller rebuilds (and overwrites) it.

    With `write_on_commit`, `put*` only stage entries in memory and `commit()` writes them: the
    CLI commits once a command has a result to write, so a command that fails leaves the cache
    as it found it.
    """

    def __init__(self, root: Path | str | None = None, *, write_on_commit: bool = False,
                 warn: Callable[[str], None] = _print_warning):
        self.root = Path(root) if root is not None else default_cache_dir()
        self.write_on_commit = write_on_commit
        self.warn = warn
        self._staged: dict[Path, tuple[dict[str, torch.Tensor], dict[str, str]]] = {}

    @staticmethod
    def key(**parts) -> str:
        blob = json.dumps({"cache_format": CACHE_FORMAT, **parts}, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:32]

    def _path(self, key: str, kind: str = "dictionaries") -> Path:
        return self.root / kind / f"{key}.safetensors"

    # ---- raw entries ------------------------------------------------------------------------
    def _read(self, path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]] | None:
        """A verified entry, None when absent; a corrupt one is reported and is None."""
        if path in self._staged:
            return self._staged[path]
        if not path.exists():
            return None
        try:
            try:
                tensors = load_file(str(path))
                with safe_open(str(path), framework="pt") as fh:
                    meta = dict(fh.metadata() or {})
            except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
                raise CorruptEntry(f"unreadable: {one_line(exc, 80)}") from None
            stored = meta.get(HASH_KEY)
            if stored is None:
                raise CorruptEntry("no content hash")
            if stored != content_hash(tensors, meta):
                raise CorruptEntry("contents do not match their hash")
        except CorruptEntry as exc:
            self.warn(f"sae-bench: warning: cache entry {path} failed its integrity check "
                      f"({exc}); rebuilding it.")
            return None
        return tensors, meta

    def _write(self, path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, str]) -> None:
        tensors = {name: t.detach().cpu().contiguous() for name, t in tensors.items()}
        meta = {**meta, HASH_KEY: content_hash(tensors, meta)}
        if self.write_on_commit:
            self._staged[path] = (tensors, meta)
        else:
            write_bytes_atomic(path, safetensors_bytes(tensors, meta))

    def commit(self) -> None:
        """Write the staged entries, and clear out temp files that killed runs left (those of
        live runs sharing the cache stay: `remove_stale_temp_files`)."""
        for path, (tensors, meta) in self._staged.items():
            write_bytes_atomic(path, safetensors_bytes(tensors, meta))
        for kind in ("dictionaries", "activations"):
            remove_stale_temp_files(self.root / kind)
        self._staged.clear()

    # ---- fit activations ----------------------------------------------------------------------
    def get_activations(self, key: str, shape: tuple[int, ...] | None = None
                        ) -> torch.Tensor | None:
        """Cached activations [n_fit, width], or None (missing or corrupt: recompute). With
        `shape`, an entry of another shape also counts as corrupt."""
        path = self._path(key, "activations")
        entry = self._read(path)
        if entry is None:
            return None
        acts = entry[0].get("activations")
        if acts is None or (shape is not None and tuple(acts.shape) != tuple(shape)):
            found = "no tensor" if acts is None else f"shape {list(acts.shape)}"
            self.warn(f"sae-bench: warning: cache entry {path} holds {found}, expected "
                      f"{list(shape or [])}; rebuilding it.")
            return None
        return acts

    def put_activations(self, key: str, activations: torch.Tensor, **meta: str) -> None:
        self._write(self._path(key, "activations"), {"activations": activations}, dict(meta))

    # ---- supervised dictionaries -------------------------------------------------------------
    def get(self, key: str) -> SupervisedDictionary | None:
        entry = self.get_with_metadata(key)
        return None if entry is None else entry[0]

    def get_with_metadata(self, key: str, required: tuple[str, ...] = ()
                          ) -> tuple[SupervisedDictionary, dict[str, str]] | None:
        """A cached dictionary and the metadata it was stored with, or None (missing, corrupt,
        or lacking one of the `required` metadata keys: rebuild)."""
        path = self._path(key)
        entry = self._read(path)
        if entry is None:
            return None
        tensors, meta = entry
        try:
            attrs = json.loads(meta["attributes"])
            missing = [name for name in required if name not in meta]
            if missing:
                raise KeyError(missing[0])
            return SupervisedDictionary(
                method=meta["method"],
                mean=tensors["mean"],
                features={a: tensors[f"features.{a}"] for a in attrs},
                present={a: tensors[f"present.{a}"].bool() for a in attrs},
            ), meta
        except (KeyError, TypeError, ValueError) as exc:
            # The hash matched, so the writer itself stored a wrong entry; still never trusted.
            self.warn(f"sae-bench: warning: cache entry {path} is incomplete ({exc!r}); "
                      "rebuilding it.")
            return None

    def put(self, key: str, dictionary: SupervisedDictionary, **meta: str) -> None:
        tensors = {"mean": dictionary.mean}
        for a in dictionary.features:
            tensors[f"features.{a}"] = dictionary.features[a]
            tensors[f"present.{a}"] = dictionary.present[a].to(torch.uint8)
        metadata = {
            "method": dictionary.method,
            "attributes": json.dumps(list(dictionary.features)),
            **meta,
        }
        self._write(self._path(key), tensors, metadata)
