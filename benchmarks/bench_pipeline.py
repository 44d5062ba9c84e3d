"""Speed of the pieces a user waits for: SAE encode/decode, one five-axis evaluation on ioi-tiny,
leaderboard generation from the shipped results. Absolute times are reported by
pytest-benchmark (saved with --benchmark-autosave), not asserted.

Run: ``python -m pytest benchmarks/bench_pipeline.py -p no:cacheprovider``; with
``--benchmark-disable`` each runs once as a smoke test.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sae_bench.cli.main import main
from sae_bench.report.leaderboard import write_leaderboard
from sae_bench.sae import load_sae

ROOT = Path(__file__).resolve().parent.parent
SAE_FILE = ROOT / "reports" / "ioi-tiny" / "saes" / "topk-k4-task.safetensors"


@pytest.mark.parametrize("arch_file", ["topk-k4-task", "relu-l1_3-task", "gated-l1_8-task",
                                       "batchtopk-k16-task"])
def test_encode_decode(benchmark, arch_file):
    """512-latent SAEs on 5,000 ioi-tiny-width activations."""
    sae = load_sae(SAE_FILE.parent / f"{arch_file}.safetensors")
    x = torch.randn(5000, sae.d_in, generator=torch.Generator().manual_seed(0))
    out = benchmark(lambda: sae.decode(sae.encode(x)))
    assert out.shape == x.shape


# The quick pass (`--benchmark-disable`) checks that the run completes, on fewer prompts and
# without the control baselines: a default run spends most of its time learning them, and
# tests/test_host_transfers.py runs them through `sae-bench run`.
QUICK = ["--n-eval", "40", "--n-fit", "1000", "--no-control-baselines"]


def test_five_axis_run(benchmark, tmp_path):
    """`sae-bench run` of one 512-latent SAE at ioi-tiny's main node (default prompt counts and
    control baselines), dictionaries cached after the first round."""
    cache = tmp_path / "cache"
    size = [] if benchmark.enabled else QUICK

    def run():
        return main(["run", "--sae", str(SAE_FILE), "--model", "ioi-tiny", "--out",
                     str(tmp_path / "run"), "--quiet", "--cache-dir", str(cache), *size])

    assert benchmark.pedantic(run, rounds=2, iterations=1) == 0


def test_leaderboard(benchmark, tmp_path):
    results = sorted((ROOT / "reports" / "ioi-tiny" / "runs").glob("*/results.json"))
    assert len(results) >= 8
    files = benchmark.pedantic(lambda: write_leaderboard(results, tmp_path / "lb"), rounds=2,
                               iterations=1)
    assert any(f.name == "leaderboard.html" for f in files)
