"""How many workers a sweep gets on a cluster, and what each holds: one GPU per worker with
`--device cuda`, else an equal share of the cluster's CPUs; torch threads per worker equal to
its CPU share, so that workers together never run more threads than the cluster has cores."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sae_bench.errors import UserError


@dataclass(frozen=True)
class Resources:
    n_workers: int
    cpus: int  # per worker (Ray's num_cpus), also its torch thread count
    gpus: int  # per worker (Ray's num_gpus): 1 with --device cuda, else 0

    def describe(self) -> str:
        held = f"1 GPU and {self.cpus} CPU(s)" if self.gpus else f"{self.cpus} CPU(s)"
        return f"{self.n_workers} worker(s), each with {held} and {self.cpus} torch thread(s)"


def plan(cluster: Mapping[str, float], device: str, workers: int | None, n_saes: int
         ) -> Resources:
    """Resources for a sweep of `n_saes` on a cluster with `cluster` totals (Ray's
    `cluster_resources()`: "CPU", "GPU"). More workers than the cluster can hold at once would
    wait forever for their resources, so that is refused."""
    cpus, gpus = int(cluster.get("CPU", 0)), int(cluster.get("GPU", 0))
    if device.startswith("cuda"):
        if device != "cuda":
            raise UserError(f"--device {device}: with --executor ray each worker gets one GPU "
                            "of its own; pass --device cuda.")
        if gpus == 0:
            raise UserError("--device cuda: the Ray cluster has no GPU; add GPU nodes to it, or "
                            "use --device cpu.")
        n = workers or gpus
        if n > gpus:
            raise UserError(f"--workers {n}: the Ray cluster has {gpus} GPU(s), one per "
                            f"worker; pass --workers {gpus} or fewer.")
    else:
        if cpus == 0:
            raise UserError("the Ray cluster has no CPU to run workers on; add a node to it.")
        n = workers or cpus
        if n > cpus:
            raise UserError(f"--workers {n}: the Ray cluster has {cpus} CPU(s), at least one "
                            f"per worker; pass --workers {cpus} or fewer.")
    n = max(1, min(n, n_saes))
    return Resources(n_workers=n, cpus=max(1, cpus // n), gpus=1 if device == "cuda" else 0)
