"""Every bad input to `sae-bench run` gives one clear line on stderr, exit code 2, no traceback,
and writes nothing."""

from __future__ import annotations

import pickle

import pytest
import torch
from helpers import identity_sae
from safetensors.torch import save_file

from sae_bench.cli.main import main
from sae_bench.sae import save_native

HOOK = "blocks.0.hook_resid_post"


def good_tensors(d_in=128, d_sae=256):
    return {"W_enc": torch.randn(d_in, d_sae), "W_dec": torch.randn(d_sae, d_in),
            "b_enc": torch.zeros(d_sae), "b_dec": torch.zeros(d_in)}


def write(path, tensors, **meta):
    save_file(tensors, str(path), metadata={"architecture": "relu", "hook_name": HOOK,
                                            "position": "END", **meta})
    return path


class Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


def make_case(name, tmp_path):
    p = tmp_path / "sae.safetensors"
    t = good_tensors()
    if name == "missing_keys":
        del t["b_dec"]
        return write(p, t), "b_dec"
    if name == "wrong_shape":
        t["b_enc"] = torch.zeros(7)
        return write(p, t), "shape"
    if name == "width_mismatch":
        return write(p, good_tensors(d_in=64)), "d_in=64 but node blocks.0.hook_resid_post@END"
    if name == "nan":
        t["W_enc"][0, 0] = float("nan")
        return write(p, t), "NaN"
    if name == "unknown_architecture":
        return write(p, t, architecture="reluu"), "Did you mean 'relu'"
    if name == "unknown_hook":
        return write(p, t, hook_name="blocks.0.hook_resid_postt"), "unknown hook"
    if name == "empty":
        p.write_bytes(b"")
        return p, "empty"
    if name == "truncated":
        write(p, t)
        p.write_bytes(p.read_bytes()[:200])
        return p, "truncated"
    if name == "pickle_with_code":
        q = tmp_path / "sae.pt"
        with open(q, "wb") as fh:
            pickle.dump({"W_enc": Evil()}, fh)
        return q, "pickled code"
    if name == "missing_file":
        return tmp_path / "nope.safetensors", "not found"
    raise AssertionError(name)


CASES = ["missing_keys", "wrong_shape", "width_mismatch", "nan", "unknown_architecture",
         "unknown_hook", "empty", "truncated", "pickle_with_code", "missing_file"]


@pytest.mark.parametrize("case", CASES)
def test_bad_sae_one_line_exit_2(case, tmp_path, capsys):
    path, expected = make_case(case, tmp_path)
    out = tmp_path / "run"
    code = main(["run", "--sae", str(path), "--model", "ioi-tiny", "--out", str(out),
                 "--quiet", "--n-fit", "200", "--n-eval", "50", "--cache-dir",
                 str(tmp_path / "c")])
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 2, captured.err
    assert len(lines) == 1 and lines[0].startswith("sae-bench: error: "), captured.err
    assert expected.lower() in lines[0].lower()
    assert "Traceback" not in captured.err and "must never run" not in captured.out
    assert not out.exists(), "nothing is written on failure"


@pytest.mark.parametrize("args, expected", [
    (["--task", "iol"], "unknown task 'iol'. Did you mean 'ioi'"),
    (["--model", "ioi-tin"], "unknown model 'ioi-tin'. Did you mean 'ioi-tiny'"),
])
def test_unknown_task_or_model(args, expected, tmp_path, capsys):
    sae = tmp_path / "ok.safetensors"
    save_native(identity_sae(128, HOOK), sae)
    code = main(["run", "--sae", str(sae), "--out", str(tmp_path / "run"), "--quiet", *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and expected in err[0]
    assert not (tmp_path / "run").exists()


def test_existing_results_survive_a_failed_run(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "results.json").write_text("previous results")
    bad = write(tmp_path / "bad.safetensors", {**good_tensors(), "b_enc": torch.zeros(3)})
    assert main(["run", "--sae", str(bad), "--out", str(out), "--quiet"]) == 2
    assert (out / "results.json").read_text() == "previous results"


def test_real_process_prints_one_line_for_a_pickle_with_code(tmp_path):
    """Through a real process: no warnings, no traceback, the payload never runs."""
    import subprocess
    import sys

    path = tmp_path / "evil.pt"
    with open(path, "wb") as fh:
        pickle.dump({"W_enc": Evil()}, fh)
    proc = subprocess.run(
        [sys.executable, "-m", "sae_bench.cli.main", "run", "--sae", str(path), "--out",
         str(tmp_path / "run")],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert "pickled code" in proc.stderr and "must never run" not in proc.stdout



def test_a_closed_pipe_ends_quietly(monkeypatch):
    """`sae-bench nodes | head -1`: the reader has left; exit 0 without a traceback."""
    import os
    import sys

    read, write = os.pipe()
    os.close(read)  # every write now fails with EPIPE (Python ignores SIGPIPE)
    with os.fdopen(write, "w", buffering=1) as closed:
        monkeypatch.setattr(sys, "stdout", closed)
        assert main(["nodes", "--model", "ioi-tiny"]) == 0
