"""Speed of `InterventionRunner.run` against the reference `patching.run_patched`.

GPT-2-Small-shaped random model, 1,000 IOI eval prompts, random patch values at a cross-section.
Both paths are timed in the same test, interleaved, with `time.perf_counter`, so the speed-up
ratio is measured under the same machine load; ratios and absolute times go to
`benchmark.extra_info` and are printed at the end of the run; only the ratio is asserted (with
generous headroom).

Run: ``pytest benchmarks/bench_runner.py -q -p no:cacheprovider`` (the file is collected because
it is named explicitly). With ``--benchmark-disable`` each test runs once on 128 prompts, as a
smoke test of the same code.
"""

from __future__ import annotations

import resource
import time

import pytest
import torch

from sae_bench.engine.patching import run_patched
from sae_bench.engine.runner import InterventionRunner
from sae_bench.models.registry import load_model
from sae_bench.tasks import get_task

N_PROMPTS = 1_000
N_SMOKE = 128
# Minimum speed-ups asserted: far below those measured (see extra_info), so that machine noise
# cannot fail the run, yet a runner that recomputes the whole model would.
MIN_SPEEDUP = {"bnm_out": 1.5, "si_v": 1.2}


@pytest.fixture(scope="module")
def gpt2_random():
    return load_model("gpt2-random")


@pytest.fixture(scope="module")
def setups(gpt2_random):
    """n -> (task data, runner, seconds to build the runner); built once per prompt count."""
    cache: dict[int, tuple] = {}

    def get(n: int):
        if n not in cache:
            data = get_task("ioi").build(gpt2_random, n=n, seed=0, split="eval")
            t0 = time.perf_counter()
            runner = InterventionRunner(gpt2_random, data.tokens, data.positions,
                                        data.answer_ids, data.distractor_ids)
            cache[n] = (data, runner, time.perf_counter() - t0)
        return cache[n]

    return get


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


@pytest.mark.parametrize("name", sorted(MIN_SPEEDUP))
def test_runner_speedup(benchmark, figures, gpt2_random, setups, name):
    n = N_PROMPTS if benchmark.enabled else N_SMOKE
    data, runner, init_s = setups(n)
    cs = {c.name: c for c in get_task("ioi").cross_sections("gpt2-random")}[name]
    gen = torch.Generator().manual_seed(0)
    acts = runner.activations(cs.nodes)
    patches = {k: a + a.std() * torch.randn(a.shape, generator=gen) for k, a in acts.items()}

    def fast():
        return runner.run(patches)

    def lean():
        return runner.run(patches, argmax=False)

    def reference():
        return run_patched(gpt2_random, data.tokens, data.positions, patches, data.answer_ids,
                           data.distractor_ids)

    # Interleaved so that a change in machine load hits both paths alike; the reference is
    # timed once (about a minute at 1,000 prompts on 2 cores), the fast paths best of three.
    fast_s, lean_s = [], []
    for _ in range(2 if benchmark.enabled else 1):
        fast_s.append(timed(fast)[1])
        lean_s.append(timed(lean)[1])
    ref, ref_s = timed(reference)
    out, t = timed(fast)
    fast_s.append(t)
    lean_s.append(timed(lean)[1])
    torch.testing.assert_close(out.logit_diff, ref.logit_diff, atol=1e-4, rtol=0)
    assert torch.equal(out.argmax, ref.argmax)

    speedup, speedup_lean = ref_s / min(fast_s), ref_s / min(lean_s)
    figures(dict(
        n_prompts=n,
        cross_section=name,
        reference_s=round(ref_s, 3),
        runner_s=round(min(fast_s), 3),
        runner_no_argmax_s=round(min(lean_s), 3),
        speedup=round(speedup, 2),
        speedup_no_argmax=round(speedup_lean, 2),
        runner_init_s=round(init_s, 3),
        cache_gb=round(runner.cache_nbytes / 1e9, 3),
        max_rss_gb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 3),
        threads=torch.get_num_threads(),
    ))
    # pytest-benchmark's own statistics for the fast path (a single call when disabled).
    benchmark.pedantic(fast, rounds=3, iterations=1)
    assert speedup >= MIN_SPEEDUP[name], benchmark.extra_info
