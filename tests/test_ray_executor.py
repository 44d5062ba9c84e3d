"""`sae-bench run --executor ray` on a local Ray cluster the tests start (2 CPUs, 2 workers).

Checked against an in-process local run of the same sweep: byte-identical files; the supervised
dictionaries and fit activations built once (by the preparing task) and never by a worker; a
worker killed by PID mid-sweep is restarted by Ray and the sweep completes with nothing lost;
with no retries left its SAEs are reported failed, with the reason, and a re-run with
`--skip-completed` finishes the sweep. Skipped where Ray is not installed (CI installs the
`ray` extra).
"""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
from pathlib import Path

import pytest
import torch
from helpers import identity_sae

from sae_bench.cli.main import main
from sae_bench.sae import SAE, save_native

ray = pytest.importorskip("ray")

pytestmark = pytest.mark.slow
HOOKS = ["blocks.0.hook_resid_post"] * 3 + ["blocks.1.hook_resid_post"]  # two groups
# The control baselines cost more than the rest of these runs; their hand-over to the workers
# is checked once (`test_control_baselines_are_learned_once_and_handed_to_the_workers`).
TINY = ["--model", "ioi-tiny", "--n-fit", "1000", "--n-eval", "40", "--quiet",
        "--no-control-baselines"]
# Workers hold one CPU each, hence one torch thread; the local run must use the same count
# (a float32 sum's last digits depend on it).
THREADS = 1


@pytest.fixture(scope="module")
def saes(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("saes")
    g = torch.Generator().manual_seed(3)
    paths = []
    for i, hook in enumerate(HOOKS):
        path = folder / f"sae{i}.safetensors"
        sae = identity_sae(128, hook, position="END") if i == 0 else SAE(
            W_enc=torch.randn(128, 256, generator=g) / 11,
            W_dec=torch.randn(256, 128, generator=g) / 16, b_enc=torch.zeros(256),
            b_dec=torch.zeros(128), architecture="relu", hook_name=hook, position="END")
        save_native(sae, path)
        paths.append(path)
    return paths


def argv(saes: list[Path], out: Path, cache: Path, *extra: str) -> list[str]:
    args = ["run", "--out", str(out), "--cache-dir", str(cache), *TINY, *extra]
    for sae in saes:
        args += ["--sae", str(sae)]
    return args


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


@pytest.fixture(scope="module")
def local_files(saes, tmp_path_factory) -> dict[str, bytes]:
    root = tmp_path_factory.mktemp("local")
    threads = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    try:
        assert main(argv(saes, root / "out", root / "cache")) == 0
    finally:
        torch.set_num_threads(threads)
    found = files(root / "out")
    assert len(found) == 2 * len(saes)
    return found


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=200 * 2**20,
             logging_level="WARNING")
    yield
    ray.shutdown()


def ray_argv(saes, out, cache, *extra):
    return argv(saes, out, cache, "--executor", "ray", "--workers", "2", *extra)


def test_ray_sweep_writes_the_local_files_and_builds_dictionaries_once(
        saes, local_files, cluster, tmp_path, capfd):
    assert main(ray_argv(saes, tmp_path / "out", tmp_path / "cache")) == 0
    assert files(tmp_path / "out") == local_files
    err = capfd.readouterr().err
    line = re.search(r"2 worker\(s\).*scored 4 of 4 SAE\(s\); .*: (\d+) cache entries built "
                     r"once, (\d+) rebuilt by workers", err)
    assert line, err[-2000:]
    # Two nodes, each: mean and lstsq dictionaries, and one set of fit activations. None by a
    # worker.
    assert int(line[1]) == 2 * 3 and int(line[2]) == 0, line[0]
    # They went to the cache once: a second sweep builds nothing.
    assert main(ray_argv(saes, tmp_path / "again", tmp_path / "cache")) == 0
    assert re.search(r": 0 cache entries built once, 0 rebuilt", capfd.readouterr().err)
    assert files(tmp_path / "again") == local_files


def test_control_baselines_are_learned_once_and_handed_to_the_workers(
        saes, cluster, tmp_path, capfd):
    """The baselines depend on the context only: the preparing task learns them (into the
    cache) and every worker reads them; none is learned by a worker."""
    args = [a for a in ray_argv(saes[1:3], tmp_path / "out", tmp_path / "cache")
            if a != "--no-control-baselines"]
    assert main(args) == 0
    err = capfd.readouterr().err
    line = re.search(r": (\d+) cache entries built once, (\d+) rebuilt by workers", err)
    assert line, err[-2000:]
    # One node: 3 entries of dictionaries and activations, and the baselines' parameters.
    assert int(line[1]) > 3 and int(line[2]) == 0, line[0]
    for result in (tmp_path / "out").rglob("results.json"):
        assert json.loads(result.read_text())["control_baselines"], result


def _parent(pid: int) -> int:
    # /proc/PID/stat: "PID (COMM) STATE PPID ..."; COMM may hold spaces, so split after ")".
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def sweep_workers() -> list[int]:
    """PIDs of this test's Ray worker processes holding a SweepWorker (descendants of this
    process, which started the cluster; Ray titles them ray::CLASS, and ray::CLASS.METHOD
    while a call runs), busy ones first."""
    me, found = os.getpid(), []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if "ray::SweepWorker" not in title:
                continue
            pid = ancestor = int(entry.name)
            while ancestor > 1 and ancestor != me:
                ancestor = _parent(ancestor)
        except (OSError, ValueError, IndexError):
            continue  # the process ended while we looked
        if ancestor == me:
            found.append((".score" not in title, pid))
    return [pid for _, pid in sorted(found)]


def run_and_kill_a_worker(args: list[str], out: Path, total: int) -> tuple[int, int]:
    """Run the sweep in a thread; SIGKILL a busy worker by PID once the first SAE is written.
    (exit code, SAEs written when the worker was killed)."""
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(main(args)))
    thread.start()
    written_at_kill = -1
    deadline = time.monotonic() + 600
    while thread.is_alive() and time.monotonic() < deadline:
        written = len(list(out.rglob("results.json")))
        workers = sweep_workers()
        if written >= 1 and workers:
            os.kill(workers[0], signal.SIGKILL)
            written_at_kill = written
            break
        time.sleep(0.05)
    thread.join(timeout=600)
    assert codes, "the sweep did not finish"
    assert 1 <= written_at_kill < total, f"killed at {written_at_kill} of {total}"
    return codes[0], written_at_kill


def test_a_worker_killed_mid_sweep_is_restarted_and_nothing_is_lost(
        saes, local_files, cluster, tmp_path, capfd):
    out = tmp_path / "out"
    code, _ = run_and_kill_a_worker(ray_argv(saes, out, tmp_path / "cache"), out, len(saes))
    err = capfd.readouterr().err
    assert code == 0, err[-2000:]
    assert "failed" not in err
    assert files(out) == local_files


def test_with_no_retries_left_failures_are_reported_and_skip_completed_finishes(
        saes, local_files, cluster, tmp_path, capfd):
    out, cache = tmp_path / "out", tmp_path / "cache"
    code, _ = run_and_kill_a_worker(ray_argv(saes, out, cache, "--retries", "0"), out,
                                    len(saes))
    err = capfd.readouterr().err
    assert code == 1
    failed = re.findall(r"sae-bench: failed: (\S+): (.+)", err)
    assert failed and all(reason.strip() for _, reason in failed), err[-2000:]
    assert "re-run with --skip-completed" in err
    written = files(out)
    assert written and all(local_files[name] == data for name, data in written.items())
    assert main(ray_argv(saes, out, cache, "--skip-completed")) == 0
    assert files(out) == local_files


def test_an_invalid_sae_refuses_the_sweep_before_anything_is_written(
        saes, cluster, tmp_path, capfd):
    """As in a local run: a node the model lacks is found (here by the preparing task) before
    any file or cache entry is written; one line, exit 2."""
    bad = tmp_path / "bad.safetensors"
    save_native(identity_sae(128, "blocks.7.hook_resid_post"), bad)  # ioi-tiny has 3 layers
    code = main(ray_argv([saes[0], bad], tmp_path / "out", tmp_path / "cache"))
    err = capfd.readouterr().err
    assert code == 2, err[-2000:]
    errors = [line for line in err.splitlines() if line.startswith("sae-bench: error:")]
    assert len(errors) == 1 and "blocks.7" in errors[0]
    assert not (tmp_path / "out").exists()
    assert not list((tmp_path / "cache").rglob("*.safetensors"))
