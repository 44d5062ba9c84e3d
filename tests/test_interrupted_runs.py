"""Interrupted and concurrent runs, in real processes.

A multi-SAE run killed (SIGKILL, by PID) at several points and resumed with `--skip-completed`
must end with every file byte-identical to an uninterrupted run, nothing missing and no temp
files left; two runs sharing one cache must both succeed with the same results.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import identity_sae

from sae_bench.cli.main import main
from sae_bench.engine.cache import DictionaryCache
from sae_bench.fileio.atomic import remove_stale_temp_files, write_text_atomic
from sae_bench.sae import SAE, save_native

HOOK = "blocks.0.hook_resid_post"
# Without the control baselines: what is tested is the run's files and the shared cache, and two
# processes learning the baselines at once took over 10 minutes on CI's 2 cores.
TINY = ["--model", "ioi-tiny", "--n-fit", "1000", "--n-eval", "40", "--quiet",
        "--no-control-baselines"]


def make_saes(folder: Path) -> list[Path]:
    g = torch.Generator().manual_seed(7)
    paths = [folder / f"sae{i}.safetensors" for i in range(3)]
    save_native(identity_sae(128, HOOK, position="END"), paths[0])
    for path in paths[1:]:
        save_native(SAE(W_enc=torch.randn(128, 256, generator=g) / 11,
                        W_dec=torch.randn(256, 128, generator=g) / 16, b_enc=torch.zeros(256),
                        b_dec=torch.zeros(128), architecture="relu", hook_name=HOOK,
                        position="END"), path)
    return paths


def command(saes: list[Path], out: Path, cache: Path, *extra: str) -> list[str]:
    argv = [sys.executable, "-m", "sae_bench.cli.main", "run", "--out", str(out), "--cache-dir",
            str(cache), *TINY, *extra]
    for sae in saes:
        argv += ["--sae", str(sae)]
    return argv


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def run_until(argv: list[str], ready, timeout: float = 300) -> None:
    """Start `argv`; SIGKILL it by PID as soon as `ready()` holds (or let it finish)."""
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        if ready():
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.02)
    proc.wait(timeout=60)
    proc.stderr.close()


@pytest.mark.slow
def test_killed_multi_sae_run_resumes_to_identical_files(tmp_path):
    saes = make_saes(tmp_path)
    clean = tmp_path / "clean"
    # The uninterrupted run in-process (the same code; `several SAEs` tests show a process
    # writes what main() writes), the interrupted ones as real processes to kill.
    assert main(command(saes, clean, tmp_path / "cache-clean")[3:]) == 0
    expected = files(clean)
    assert len(expected) == 6  # results.json and summary.txt per SAE

    out, cache = tmp_path / "resumed", tmp_path / "cache"
    argv = command(saes, out, cache, "--skip-completed")
    started = time.monotonic()
    points = [
        lambda: time.monotonic() - started > 2,  # while importing / loading the model
        lambda: (out / "sae0" / "summary.txt").exists(),  # between the first SAE's two files
        lambda: (out / "sae1" / "results.json").exists(),  # after the second SAE
    ]
    for ready in points:
        started = time.monotonic()
        run_until(argv, ready)
    # A kill between the two writes of the old order lost summary.txt for good; and a killed
    # writer leaves temp files: both must be repaired on resume.
    (out / "sae0" / "summary.txt").unlink(missing_ok=True)
    (out / "sae0").mkdir(parents=True, exist_ok=True)
    stale = out / "sae0" / ".results.json.999999999.abcd.tmp"
    stale.write_text("half a result")
    final = subprocess.run(argv, capture_output=True, timeout=600)
    assert final.returncode == 0, final.stderr
    assert files(out) == expected
    leftovers = [p for p in [*out.rglob(".*"), *cache.rglob(".*")] if p.is_file()]
    assert leftovers == []


def test_stale_temp_files_of_dead_writers_go_and_live_ones_stay(tmp_path):
    write_text_atomic(tmp_path / "a.txt", "a")
    dead = tmp_path / ".a.txt.999999999.x1.tmp"
    live = tmp_path / f".a.txt.{os.getpid()}.x2.tmp"
    dead.write_text("")
    live.write_text("")
    assert remove_stale_temp_files(tmp_path) == [dead]
    assert live.exists() and (tmp_path / "a.txt").read_text() == "a"


@pytest.mark.slow
def test_two_concurrent_runs_share_one_cache(tmp_path):
    saes = make_saes(tmp_path)[:1]
    cache = tmp_path / "cache"
    procs = [subprocess.Popen(command(saes, tmp_path / f"out{i}", cache),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for i in range(2)]
    errs = [p.communicate(timeout=600)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errs
    assert files(tmp_path / "out0") == files(tmp_path / "out1")
    assert not any(b"integrity" in e for e in errs)
    # Every shared entry verifies against its content hash.
    warnings: list[str] = []
    reader = DictionaryCache(cache, warn=warnings.append)
    paths = sorted(cache.rglob("*.safetensors"))
    # 3 entries of dictionaries and fit activations, each written once, however many runs
    # share the cache.
    assert len(paths) == 3 and all(reader._read(p) is not None for p in paths), warnings


def test_skip_completed_restores_a_lost_summary_and_clears_temp_files(tmp_path, capsys):
    (sae,) = make_saes(tmp_path)[:1]
    out = tmp_path / "run"
    argv = command([sae], out, tmp_path / "cache")[3:]
    assert main(argv) == 0
    summary = (out / "summary.txt").read_bytes()
    result_mtime = (out / "results.json").stat().st_mtime_ns
    (out / "summary.txt").unlink()
    stale = out / ".summary.txt.999999999.zz.tmp"
    stale.write_text("")
    capsys.readouterr()
    assert main([*argv, "--skip-completed"]) == 0
    err = capsys.readouterr().err
    assert "skipped" in err and "restored" in err
    assert (out / "summary.txt").read_bytes() == summary and not stale.exists()
    assert (out / "results.json").stat().st_mtime_ns == result_mtime
