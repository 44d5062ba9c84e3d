"""One `sae-bench run` of N SAEs on the GPT-2-Small-shaped random model, measured from inside.

Run as a script (``python benchmarks/scale_probe.py --n-saes 1 --out probe.json``) so that its
peak memory is the evaluation's own; `bench_scale.py` starts it in a fresh process per scenario.

Measured in the same process, around the real CLI:
- ``run_s``: wall time of ``sae-bench run`` (SAE loading, model loading, evaluation, writing);
- ``model_load_s``: the model load inside it, so ``eval_s = run_s - model_load_s``;
- ``forward_s``: time inside the model's forward computations the evaluation must do: the
  runner's clean pass, every activation collection on fit and counterfactual prompts, every batch
  of the suffix-only runner (patched runs, activations it computes), and any other
  TransformerLens forward. Nested calls count once.
- ``peak_rss_gb``: the process's peak resident memory, model included (``VmHWM``: unlike
  ``ru_maxrss``, it does not carry over the parent's peak across fork and exec).

The SAEs are random TopK SAEs (k 16, 512 latents per 64-dim head), one per node of the
cross-section, seeded; speed depends on their shapes and sparsity, not on what they learned.
"""

from __future__ import annotations

import argparse
import functools
import json
import resource
import tempfile
import time
from pathlib import Path

import torch

D_SAE = 512
K = 16


def write_bundles(folder: Path, n: int, cross_section: str, d_in: int) -> list[Path]:
    """n bundles of random TopK SAEs, one SAE per node of the cross-section; their folders."""
    from sae_bench.sae import SAE, save_bundle
    from sae_bench.tasks import get_task

    nodes = {cs.name: cs for cs in get_task("ioi").cross_sections("gpt2-random")}[
        cross_section].nodes
    gen = torch.Generator().manual_seed(0)
    bundles = []
    for i in range(n):
        saes = {}
        for node in nodes:
            w = torch.randn(d_in, D_SAE, generator=gen) / d_in**0.5
            saes[node] = SAE(W_enc=w, W_dec=w.T.contiguous() / K**0.5, b_enc=torch.zeros(D_SAE),
                             b_dec=torch.zeros(d_in), architecture="topk", k=K,
                             hook_name=node.hook, head=node.head, position=node.position)
        bundles.append(save_bundle(saes, folder / f"sae{i:02d}").parent)
    return bundles


class ForwardClock:
    """Adds up the wall time spent inside the wrapped methods; nested calls count once."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._depth = 0

    def wrap(self, owner, name: str) -> None:
        method = getattr(owner, name)

        @functools.wraps(method)
        def timed(*args, **kwargs):
            self._depth += 1
            start = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self.seconds += time.perf_counter() - start

        setattr(owner, name, timed)


def peak_rss_bytes() -> int:
    """Peak resident memory of this process's address space (Linux /proc; else ru_maxrss)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def probe(n_saes: int, cross_section: str, n_eval: int, n_fit: int, seed: int,
          cache_dir: Path | None = None, control_baselines: bool = False) -> dict:
    from transformer_lens import HookedTransformer

    from sae_bench.cli import run as run_command
    from sae_bench.cli.main import main
    from sae_bench.engine import collect
    from sae_bench.engine.runner import InterventionRunner

    forward = ForwardClock()
    forward.wrap(HookedTransformer, "forward")
    forward.wrap(collect, "node_activations")
    forward.wrap(InterventionRunner, "_clean_pass")
    forward.wrap(InterventionRunner, "_run_batch")
    forward.wrap(InterventionRunner, "_layer_activations")
    load = ForwardClock()
    load.wrap(run_command, "load_model")  # the module whose cmd_run loads the model
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        bundles = write_bundles(folder, n_saes, cross_section, d_in=64)
        argv = ["run", "--model", "gpt2-random", "--n-eval", str(n_eval), "--n-fit", str(n_fit),
                "--seed", str(seed), "--cache-dir", str(cache_dir or folder / "cache"), "--quiet",
                "--out", str(folder / "runs" / ("one" if n_saes == 1 else ""))]
        if not control_baselines:  # the SAE harness alone, as the benchmark's ratios need
            argv.append("--no-control-baselines")
        for bundle in bundles:
            argv += ["--sae", str(bundle)]
        start = time.perf_counter()
        code = main(argv)
        run_s = time.perf_counter() - start
        results = sorted((folder / "runs").rglob("results.json"))
    if code != 0 or len(results) != n_saes:
        raise SystemExit(f"scale probe: sae-bench run exited {code} with {len(results)} results")
    eval_s = run_s - load.seconds
    return {
        "n_saes": n_saes,
        "cross_section": cross_section,
        "n_eval": n_eval,
        "n_fit": n_fit,
        "run_s": round(run_s, 2),
        "model_load_s": round(load.seconds, 2),
        "eval_s": round(eval_s, 2),
        "forward_s": round(forward.seconds, 2),
        "harness_over_forward": round(eval_s / forward.seconds, 3),
        "peak_rss_gb": round(peak_rss_bytes() / 1e9, 3),
        "threads": torch.get_num_threads(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-saes", type=int, default=1)
    parser.add_argument("--cross-section", default="bnm_out")
    parser.add_argument("--n-eval", type=int, default=1000)
    parser.add_argument("--n-fit", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="dictionary/activation cache to use (default: a fresh, empty one)")
    parser.add_argument("--out", type=Path, required=True, help="JSON file for the figures")
    parser.add_argument("--control-baselines", action="store_true",
                        help="also learn and score the control baselines (off: the SAE harness "
                        "alone)")
    args = parser.parse_args()
    figures = probe(args.n_saes, args.cross_section, args.n_eval, args.n_fit, args.seed,
                    args.cache_dir, args.control_baselines)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
