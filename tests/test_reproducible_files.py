"""What the written files depend on: the same SAE saved in two processes is the same bytes, and a
result does not depend on how the SAE's path was spelled or on the cwd."""

from __future__ import annotations

import json
import subprocess
import sys

from helpers import identity_sae

from sae_bench.cli.main import main
from sae_bench.fileio.canonical import canonical_header
from sae_bench.sae import save_native

HOOK = "blocks.0.hook_resid_post"
TINY = ["--model", "ioi-tiny", "--n-fit", "1000", "--n-eval", "40", "--quiet",
        "--no-control-baselines"]

SAVE = """
import sys, torch
from sae_bench.sae import SAE, save_native
g = torch.Generator().manual_seed(0)
sae = SAE(W_enc=torch.randn(16, 32, generator=g), W_dec=torch.randn(32, 16, generator=g),
          b_enc=torch.zeros(32), b_dec=torch.zeros(16), architecture="topk", k=4,
          hook_name="blocks.0.hook_resid_post", position="END", input_scale=2.5,
          metadata={"trained_on": "task", "steps": 10, "note": "x"})
save_native(sae, sys.argv[1])
"""


def test_save_native_is_byte_identical_across_processes(tmp_path):
    """The safetensors metadata map used to come out in a per-process hash order, so the same
    SAE had a different sha256 in every process. Several processes make a coincidental match of
    a random order unlikely (the header has 9 metadata keys)."""
    outs = []
    for i in range(3):
        path = tmp_path / f"sae{i}.safetensors"
        # Different hash seeds: what differs between real processes.
        subprocess.run([sys.executable, "-c", SAVE, str(path)], check=True, timeout=300,
                       env={"PYTHONHASHSEED": str(i), "PATH": ""})
        outs.append(path.read_bytes())
    assert outs[0] == outs[1] == outs[2]
    assert canonical_header(outs[0]) == outs[0]  # already canonical: sorted, compact, padded
    length = int.from_bytes(outs[0][:8], "little")
    header = json.loads(outs[0][8:8 + length])
    assert list(header["__metadata__"]) == sorted(header["__metadata__"])
    assert length % 8 == 0


def test_result_does_not_depend_on_path_spelling_or_cwd(tmp_path, monkeypatch):
    sub = tmp_path / "saes"
    sub.mkdir()
    save_native(identity_sae(128, HOOK, position="END"), sub / "id.safetensors")
    cache = str(tmp_path / "cache")
    spellings = [(tmp_path, "saes/id.safetensors"), (sub, "./id.safetensors"),
                 (tmp_path / "saes", str(sub / ".." / "saes" / "id.safetensors"))]
    results = []
    for i, (cwd, spelling) in enumerate(spellings):
        monkeypatch.chdir(cwd)
        out = tmp_path / f"out{i}"
        assert main(["run", "--sae", spelling, "--out", str(out), "--cache-dir", cache,
                     *TINY]) == 0
        results.append((out / "results.json").read_bytes())
    assert results[0] == results[1] == results[2]
    doc = json.loads(results[0])
    assert list(doc["provenance"]["sae_files"]) == ["id.safetensors"]
    assert doc["saes"][0]["source"] == "id.safetensors"


def test_run_name_from_a_dotdot_path_stays_inside_out(tmp_path, monkeypatch):
    """`--sae x/sub/..` used to be named `..`, so its results landed outside --out."""
    from sae_bench.cli.run import _default_run_name

    (tmp_path / "x" / "sub").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert _default_run_name("x/sub/..") == "x"
    assert _default_run_name(".") == tmp_path.name
