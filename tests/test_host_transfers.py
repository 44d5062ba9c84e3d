"""The GPU path's contract: no tensor of more than one element leaves the device except at the
sites `executors.host_transfers.ALLOWED` names with a reason.

On a CPU-only machine the recorder runs in `every_call` mode, which records the calls that would
leave a GPU (the code is the same on either device); on a GPU (marker `gpu`) it records the real
transfers of a `--device cuda` run.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from helpers import identity_sae

import sae_bench
from sae_bench.cli.executors import host_transfers
from sae_bench.cli.executors.host_transfers import ALLOWED, record_host_transfers, unlisted
from sae_bench.cli.main import main
from sae_bench.sae import save_native

HOOK = "blocks.0.hook_resid_post"
TINY = ["--model", "ioi-tiny", "--n-fit", "1000", "--n-eval", "40", "--quiet"]


def run_recorded(tmp_path: Path, device: str, every_call: bool, roots=None, extra=()):
    sae = tmp_path / "sae.safetensors"
    save_native(identity_sae(128, HOOK, position="END"), sae)
    kwargs = {} if roots is None else {"roots": roots}
    with record_host_transfers(every_call=every_call, **kwargs) as records:
        code = main(["run", "--sae", str(sae), "--out", str(tmp_path / "out"), "--cache-dir",
                     str(tmp_path / "cache"), "--device", device, *TINY, *extra])
    assert code == 0
    return records


def test_every_array_leaving_the_device_does_so_at_a_named_site(tmp_path):
    records = run_recorded(tmp_path, "cpu", every_call=True)
    assert unlisted(records) == {}
    # The recorder saw the evaluation: activations and readouts leave at their named sites.
    sites = {r.site for r in records if r.numel > 1}
    assert "collect.py:node_activations" in sites
    assert "runner.py:InterventionRunner._run_batch" in sites


def test_a_new_transfer_in_the_pipeline_is_caught(tmp_path, monkeypatch):
    """The check fails when a step moves an array to the host behind the user's back: here the
    SAE's encode sends its codes through the host (a test-file frame, watched for this)."""
    from sae_bench.sae import SAE

    encode = SAE.encode
    monkeypatch.setattr(SAE, "encode", lambda self, x: encode(self, x).cpu())
    records = run_recorded(tmp_path, "cpu", every_call=True,
                           roots=[Path(sae_bench.__file__).parent, Path(__file__).parent],
                           extra=["--no-control-baselines"])  # the check, not its coverage
    found = unlisted(records)
    assert any(site.startswith("test_host_transfers.py:") and methods == {"cpu"}
               for site, methods in found.items()), found


def test_scalars_are_final_reductions_and_pass_anywhere():
    records = [host_transfers.Transfer("x.py:f", "item", 1, "cuda:0"),
               host_transfers.Transfer("x.py:f", "cpu", 2, "cuda:0")]
    assert unlisted(records) == {"x.py:f": {"cpu"}}


def test_the_recorder_restores_torch_and_ignores_cpu_tensors_by_default():
    before = torch.Tensor.cpu
    with record_host_transfers() as records:
        torch.ones(3).cpu().tolist()
    assert torch.Tensor.cpu is before and records == []


def test_every_allowed_site_names_a_function_that_exists():
    """A renamed or moved function must take its entry along (sites are file:function)."""
    root = Path(sae_bench.__file__).parent
    for site in ALLOWED:
        file_name, qualname = site.split(":")
        files = list(root.rglob(file_name))
        assert files, f"{site}: no file {file_name}"
        names = [part for part in qualname.split(".") if not part.startswith("<")]
        text = "\n".join(f.read_text() for f in files)
        assert all(re.search(rf"\b(def|class) {n}\b", text) for n in names), site


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_cuda_run_moves_arrays_to_the_host_only_at_named_sites(tmp_path):
    records = run_recorded(tmp_path, "cuda", every_call=False)
    assert records, "nothing left the GPU: the run did not use it"
    assert all(r.device.startswith("cuda") for r in records)
    assert unlisted(records) == {}
