"""The executors' pure parts (grouping, shares, resources) and the CLI's refusals, without Ray."""

from __future__ import annotations

import sys

import pytest
from helpers import identity_sae

from sae_bench.cli.executors import grouping, resources
from sae_bench.cli.main import main
from sae_bench.errors import UserError
from sae_bench.sae import save_native

HOOK = "blocks.0.hook_resid_post"


def key(nodes: tuple[str, ...], seed: int = 0) -> grouping.GroupKey:
    return grouping.GroupKey("ioi-tiny", "ioi", seed, 1000, 40, nodes)


def test_groups_follow_what_saes_share_in_sweep_order():
    a, b = ("x@END",), ("y@END",)
    keys = [key(a), key(b), key(a), key(a, seed=1), key(b)]
    groups = grouping.group(keys)
    assert [g.members for g in groups] == [(0, 2), (1, 4), (3,)]
    assert [g.key for g in groups] == [key(a), key(b), key(a, seed=1)]


@pytest.mark.parametrize("n_saes,n_workers", [(7, 2), (5, 5), (3, 8), (20, 3), (1, 1)])
def test_shares_cover_the_sweep_once_in_near_equal_sizes(n_saes, n_workers):
    keys = [key((f"n{i % 3}@END",)) for i in range(n_saes)]
    groups = grouping.group(keys)
    out = grouping.shares(groups, n_workers)
    flat = [i for share in out for i in share]
    assert sorted(flat) == list(range(n_saes))  # every SAE exactly once
    assert len(out) == min(n_saes, n_workers) and all(out)
    assert max(map(len, out)) - min(map(len, out)) <= 1
    # Cut from the group-ordered sweep: a share holds SAEs of few groups, in group order.
    assert flat == [i for g in groups for i in g.members]


def test_a_share_spans_one_group_when_sizes_allow():
    keys = [key(("a@END",))] * 3 + [key(("b@END",))] * 3
    assert grouping.shares(grouping.group(keys), 2) == [(0, 1, 2), (3, 4, 5)]


def test_cpu_workers_share_the_cores_without_oversubscribing():
    plan = resources.plan({"CPU": 16.0}, "cpu", None, n_saes=100)
    assert (plan.n_workers, plan.cpus, plan.gpus) == (16, 1, 0)
    plan = resources.plan({"CPU": 16.0}, "cpu", 4, n_saes=100)
    assert (plan.n_workers, plan.cpus) == (4, 4)  # 4 workers x 4 threads = 16 cores
    plan = resources.plan({"CPU": 16.0}, "cpu", 4, n_saes=3)
    assert (plan.n_workers, plan.cpus) == (3, 5)  # never more workers than SAEs
    with pytest.raises(UserError, match="--workers 17.*16 CPU"):
        resources.plan({"CPU": 16.0}, "cpu", 17, n_saes=100)


def test_cuda_gives_each_worker_one_gpu_and_refuses_what_cannot_run():
    plan = resources.plan({"CPU": 32.0, "GPU": 4.0}, "cuda", None, n_saes=1000)
    assert (plan.n_workers, plan.cpus, plan.gpus) == (4, 8, 1)
    with pytest.raises(UserError, match="no GPU"):
        resources.plan({"CPU": 8.0}, "cuda", None, n_saes=10)
    with pytest.raises(UserError, match="pass --device cuda"):
        resources.plan({"CPU": 8.0, "GPU": 2.0}, "cuda:1", None, n_saes=10)
    with pytest.raises(UserError, match="--workers 3.*2 GPU"):
        resources.plan({"CPU": 8.0, "GPU": 2.0}, "cuda", 3, n_saes=10)


@pytest.fixture
def sae_file(tmp_path):
    path = tmp_path / "sae.safetensors"
    save_native(identity_sae(128, HOOK), path)
    return path


def test_executor_ray_without_ray_is_one_line_exit_2(tmp_path, sae_file, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    code = main(["run", "--sae", str(sae_file), "--out", str(tmp_path / "out"), "--quiet",
                 "--executor", "ray"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "pip install 'principled-sae-bench[ray]'" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("option", [["--workers", "2"], ["--ray-address", "auto"]])
def test_ray_options_without_the_ray_executor_are_refused(tmp_path, sae_file, option, capsys):
    code = main(["run", "--sae", str(sae_file), "--out", str(tmp_path / "out"), *option])
    err = capsys.readouterr().err
    assert code == 2 and "only with --executor ray" in err and err.count("\n") == 1


def test_the_local_path_never_imports_ray(tmp_path):
    """The default stays free of the extra: a local run's imports do not include ray."""
    import subprocess

    code = ("import sys; from sae_bench.cli.main import main; from sae_bench.cli import commands; "
            "import sae_bench.cli.executors.grouping, sae_bench.cli.executors.resources; "
            "print('ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"
