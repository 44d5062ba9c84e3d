"""Record where tensors leave the device for the host, so that `--device cuda` keeps its work
on the GPU except at named sites.

`record_host_transfers()` wraps torch's ways out to the host (`Tensor.cpu`, `.numpy`, `.tolist`,
`.item`, `.to("cpu")` with the device spelled out, and `float()`/`int()`/`bool()` of a tensor)
and records each call made, directly or through a library, from the package: the innermost
package frame (file name and function, so the record survives a module's move), the method,
the number of elements and the source device.

Two modes:
- on a GPU (the default), only calls on tensors that are not on the CPU are recorded: the real
  transfers;
- `every_call=True` records the calls on CPU tensors too: on a machine without a GPU this sees
  every place the GPU run would leave the device, since the same code runs on either.

The policy `unlisted` checks: a scalar (one element: a metric's value, a branch condition) may
leave anywhere, since it is a final reduction; a tensor of more than one element may leave only
at a site in `ALLOWED`, which says why. A new site fails the test (tests/test_host_transfers.py)
until it is listed with its reason, or kept on the device.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import torch

import sae_bench

_PACKAGE = Path(sae_bench.__file__).resolve().parent
_HERE = Path(__file__).resolve()

# Sites (file name:function) where a tensor of more than one element leaves the device, and why.
ALLOWED: dict[str, str] = {
    # Written to disk: cache entries are stored as host bytes.
    "cache.py:content_hash": "cache entry's sha256 over its bytes (disk format)",
    "cache.py:DictionaryCache._write.<locals>.<dictcomp>": "cache entry written to disk",
    "cache.py:model_fingerprint": "a 256-element sample of each weight, hashed once per run",
    # Per-prompt readouts [n] of each (patched) run: logit difference and top-1 token at END,
    # the inputs of the final reductions (means, agreements); n numbers per run, not activations.
    "runner.py:InterventionRunner._clean_pass": "per-prompt readouts of the clean run",
    "runner.py:InterventionRunner._run_batch": "per-prompt readouts of a patched run",
    "patching.py:run_patched": "per-prompt readouts (full-recomputation path)",
    # Node activations [n, width] at the scored positions. Today the SAE's encode/decode and
    # the axes' maths run on the host, so these leave the device after every forward pass:
    # the GPU runs the forward passes (the bulk of the time, benchmarks/README.md), the host
    # the rest. Keeping them on the device is the open part of the GPU path (issue 18).
    "runner_reads.py:CleanReads._direct": "node activations to the host (SAE runs there)",
    "runner_reads.py:CleanReads._layer_activations": "node activations to the host",
    "collect.py:node_activations": "node activations to the host (SAE runs there)",
    "patching.py:collect_activations.<locals>.make_hook.<locals>.hook":
        "node activations to the host (fallback path)",
    # Control baselines (issue 16): learned and scored on the host, like the SAE edits, from
    # the full next-token logits at END (the KL to the patched distribution needs all of them).
    "forward.py:end_logits": "next-token logits at END for the baselines (hook path)",
    "forward.py:runner_end_logits": "next-token logits at END for the baselines",
    # Into the result document: latent indices and per-latent lists are JSON.
    "interpretability.py:interpret": "latent indices for the result document",
    "pipeline.py:_node_scores": "per-latent best F1 for the result document",
    # scipy's binomial tail: a [d_sae] count vector per attribute value, on the host by design.
    "oversplitting.py:oversplitting": "binomial test in scipy on per-latent counts",
}


@dataclass(frozen=True)
class Transfer:
    site: str  # file name:function of the innermost frame in the watched roots
    method: str  # cpu, numpy, tolist, item, to, float, int, bool
    numel: int
    device: str


def _site(roots: Sequence[Path]) -> str | None:
    frame: FrameType | None = sys._getframe(2)
    while frame is not None:
        path = Path(frame.f_code.co_filename)
        if path != _HERE and any(path.is_relative_to(root) for root in roots):
            # co_qualname (3.11+) names methods with their class; 3.10 has the bare name.
            code = frame.f_code
            return f"{path.name}:{getattr(code, 'co_qualname', code.co_name)}"
        frame = frame.f_back
    return None


@contextmanager
def record_host_transfers(*, every_call: bool = False, roots: Sequence[Path] = (_PACKAGE,)
                          ) -> Iterator[list[Transfer]]:
    """Record transfers into the yielded list while the block runs; the methods are restored
    on exit (also on an exception). Not thread-safe: it patches torch.Tensor itself."""
    records: list[Transfer] = []
    resolved = [Path(r).resolve() for r in roots]
    originals = {name: getattr(torch.Tensor, name)
                 for name in ("cpu", "numpy", "tolist", "item", "to",
                              "__float__", "__int__", "__bool__")}
    busy = [False]  # torch calls these methods from inside one another (item -> __float__)

    def wrap(name: str, method):
        label = name.strip("_")

        def recorded(self: torch.Tensor, *args, **kwargs):
            if not busy[0] and (every_call or self.device.type != "cpu") and (
                    name != "to" or _to_host(args, kwargs)):
                busy[0] = True
                try:
                    site = _site(resolved)
                    if site is not None:
                        records.append(Transfer(site, label, self.numel(), str(self.device)))
                finally:
                    busy[0] = False
            return method(self, *args, **kwargs)

        return recorded

    try:
        for name, method in originals.items():
            setattr(torch.Tensor, name, wrap(name, method))
        yield records
    finally:
        for name, method in originals.items():
            setattr(torch.Tensor, name, method)


def _to_host(args, kwargs) -> bool:
    """`.to(...)` named the CPU explicitly (a device given as a variable is the run's device)."""
    target = kwargs.get("device", args[0] if args else None)
    return isinstance(target, str) and target.split(":")[0] == "cpu"


def unlisted(records: Sequence[Transfer], allowed: dict[str, str] = ALLOWED
             ) -> dict[str, set[str]]:
    """{site: methods} of the transfers of more than one element outside `allowed`."""
    out: dict[str, set[str]] = {}
    for r in records:
        if r.numel > 1 and r.site not in allowed:
            out.setdefault(r.site, set()).add(r.method)
    return out
