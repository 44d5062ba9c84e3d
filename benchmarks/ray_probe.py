"""One 20-SAE sweep (or any N) on the shipped ioi-tiny model, in this process (`--executor
local`) or on a Ray cluster of `--workers` workers this script starts on this machine
(`--executor ray`); run as a script so each scenario has a fresh process.

Measured: ``run_s``, the wall time of ``sae-bench run`` (SAE loading, model loading in every
process that needs it, evaluation, writing), and for Ray apart from it ``cluster_start_s``, the
local cluster's start (a real deployment starts its cluster once, not per sweep). The SAEs are
random TopK SAEs (k 16, 512 latents, seeded) at ioi-tiny's main node; cost depends on their
shape and sparsity, not on what they learned. torch uses every core in the local process, and
one thread per core share in each Ray worker, so both use the same cores.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch

NODE_HOOK, D_IN, D_SAE, K = "blocks.0.hook_resid_post", 128, 512, 16


def write_saes(folder: Path, n: int) -> list[Path]:
    from sae_bench.sae import SAE, save_native

    gen = torch.Generator().manual_seed(0)
    paths = []
    for i in range(n):
        w = torch.randn(D_IN, D_SAE, generator=gen) / D_IN**0.5
        path = folder / f"sae{i:02d}.safetensors"
        save_native(SAE(W_enc=w, W_dec=w.T.contiguous() / K**0.5, b_enc=torch.zeros(D_SAE),
                        b_dec=torch.zeros(D_IN), architecture="topk", k=K,
                        hook_name=NODE_HOOK, position="END"), path)
        paths.append(path)
    return paths


def probe(executor: str, n_saes: int, n_eval: int, n_fit: int, workers: int,
          control_baselines: bool = True) -> dict:
    from sae_bench.cli.main import main

    # Both scenarios use every core: the single process with as many torch threads, the
    # cluster with one worker per core share (`executors.resources`), whatever OMP_NUM_THREADS
    # the caller exported to keep other work on a shared machine at one thread.
    torch.set_num_threads(os.cpu_count() or 1)
    cluster_start_s = 0.0
    if executor == "ray":
        import ray

        start = time.perf_counter()
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, logging_level="WARNING",
                 object_store_memory=500 * 2**20)
        cluster_start_s = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        saes = write_saes(folder, n_saes)
        argv = ["run", "--model", "ioi-tiny", "--n-eval", str(n_eval), "--n-fit", str(n_fit),
                "--cache-dir", str(folder / "cache"), "--quiet", "--out", str(folder / "runs")]
        if executor == "ray":
            argv += ["--executor", "ray", "--workers", str(workers)]
        if not control_baselines:
            argv.append("--no-control-baselines")
        for sae in saes:
            argv += ["--sae", str(sae)]
        start = time.perf_counter()
        code = main(argv)
        run_s = time.perf_counter() - start
        results = sorted((folder / "runs").rglob("results.json"))
    if code != 0 or len(results) != n_saes:
        raise SystemExit(f"ray probe: sae-bench run exited {code} with {len(results)} results")
    return {"executor": executor, "n_saes": n_saes, "workers": workers if executor == "ray"
            else 1, "node": f"{NODE_HOOK}@END", "n_eval": n_eval, "n_fit": n_fit,
            "run_s": round(run_s, 2), "cluster_start_s": round(cluster_start_s, 2),
            "cores": os.cpu_count()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executor", choices=["local", "ray"], required=True)
    parser.add_argument("--n-saes", type=int, default=20)
    parser.add_argument("--n-eval", type=int, default=1000)
    parser.add_argument("--n-fit", type=int, default=4000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, required=True, help="JSON file for the figures")
    parser.add_argument("--no-control-baselines", dest="control_baselines", action="store_false",
                        help="skip the control baselines (the CI quick pass)")
    args = parser.parse_args()
    figures = probe(args.executor, args.n_saes, args.n_eval, args.n_fit, args.workers,
                    args.control_baselines)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
