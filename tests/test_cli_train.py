"""`sae-bench train-sae` writes SAEs `run` can score; `run --skip-completed` resumes sweeps."""

from __future__ import annotations

import os

import pytest
import torch

from sae_bench.cli.main import main
from sae_bench.sae import SAEBundle, load_sae

NODE = "blocks.0.hook_resid_post@END"
QUICK = ["--steps", "40", "--n-fit", "600", "--d-sae", "64", "--quiet"]
TINY = ["--model", "ioi-tiny", *QUICK]  # the fast test model, whose nodes these tests name


def test_train_one_node_then_run_and_skip(tmp_path, capsys):
    out = tmp_path / "topk.safetensors"
    assert main(["train-sae", "--arch", "topk", "--k", "4", "--node", NODE, "--out", str(out),
                 *TINY]) == 0
    sae = load_sae(out)
    assert sae.architecture == "topk" and sae.d_sae == 64 and sae.position == "END"
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask  # readable like any other file
    run_dir = tmp_path / "run"
    args = ["run", "--sae", str(out), "--model", "ioi-tiny", "--out", str(run_dir), "--quiet",
            "--n-fit", "3000", "--n-eval", "100", "--cache-dir", str(tmp_path / "c"),
            "--no-control-baselines"]
    assert main(args) == 0
    before = (run_dir / "results.json").stat().st_mtime_ns
    capsys.readouterr()
    assert main([*args, "--skip-completed"]) == 0
    assert "skipped" in capsys.readouterr().err
    assert (run_dir / "results.json").stat().st_mtime_ns == before
    assert main([*args, "--skip-completed", "--seed", "1"]) == 0  # another seed: evaluated
    after_seed = (run_dir / "results.json").stat().st_mtime_ns
    assert after_seed != before
    more = [*args, "--skip-completed", "--seed", "1", "--n-eval", "120"]
    assert main(more) == 0  # other prompt counts: evaluated again
    assert (run_dir / "results.json").stat().st_mtime_ns != after_seed


def test_train_cross_section_writes_a_bundle(tmp_path):
    out = tmp_path / "bundle"
    assert main(["train-sae", "--arch", "relu", "--l1", "1", "--cross-section", "l0_heads_out",
                 "--out", str(out), *TINY]) == 0
    bundle = load_sae(out)
    assert isinstance(bundle, SAEBundle) and len(bundle) == 4
    assert {n.head for n in bundle.nodes} == {0, 1, 2, 3}


def test_train_on_text(tmp_path):
    out = tmp_path / "text.safetensors"
    assert main(["train-sae", "--arch", "jumprelu", "--l1", "0.1", "--node", NODE, "--data",
                 "text", "--n-docs", "200", "--out", str(out), *TINY]) == 0
    assert load_sae(out).architecture == "jumprelu"


def test_train_on_ioi_circuit_text_records_the_model_and_run_refuses_another(tmp_path,
                                                                              capsys):
    """ioi-circuit's training text is its recipe's mix; the SAE names the model it saw, and
    scoring it on ioi-tiny (same width, so nothing else would notice) is refused in one line."""
    from sae_bench.models.ioi_circuit import corpus
    from sae_bench.models.ioi_circuit.model import load
    from sae_bench.models.ioi_circuit.train import shipped_training_text

    docs = shipped_training_text(40, torch.Generator().manual_seed(0))
    tokenizer = load().tokenizer
    for doc in docs:  # every word is in the shipped vocabulary, within the context
        ids = tokenizer(doc.text)["input_ids"]
        assert tokenizer.unk_token_id not in ids and len(ids) <= 63  # with <bos>; <eos> is 64th
    # The recipe's mix (no third-name episodes, ...), not the corpus module's default one.
    default_mix = corpus.sample_documents(40, torch.Generator().manual_seed(0))
    assert [d.text for d in docs] != [d.text for d in default_mix]
    out = tmp_path / "text.safetensors"
    assert main(["train-sae", "--model", "ioi-circuit", "--arch", "topk", "--k", "4", "--node",
                 "blocks.3.hook_resid_post@END", "--data", "text", "--n-docs", "50",
                 "--out", str(out), *QUICK]) == 0
    assert load_sae(out).metadata["trained_on_model"] == "ioi-circuit"
    capsys.readouterr()
    assert main(["run", "--sae", str(out), "--model", "ioi-tiny", "--out",
                 str(tmp_path / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "trained on ioi-circuit" in err[0] and "--model ioi-circuit" in err[0]


def test_text_data_is_refused_for_a_model_without_training_text(tmp_path, capsys):
    assert main(["train-sae", "--model", "gpt2-random", "--arch", "topk", "--k", "4",
                 "--node", "blocks.0.hook_resid_post@END", "--data", "text",
                 "--out", str(tmp_path / "x.safetensors"), *QUICK]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--data task" in err[0]


@pytest.mark.parametrize("args, expected", [
    (["--arch", "topk", "--node", NODE], "needs --k"),
    (["--arch", "relu", "--node", NODE], "needs --l1"),
    (["--arch", "relu", "--l1", "1"], "exactly one of --node"),
    (["--arch", "relu", "--l1", "1", "--cross-section", "nope"], "unknown cross-section"),
])
def test_train_bad_arguments(args, expected, tmp_path, capsys):
    assert main(["train-sae", *args, "--out", str(tmp_path / "x"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0]


@pytest.mark.parametrize("arch, sparsity", [("relu", ["--l1", "1"]), ("gated", ["--l1", "1"]),
                                            ("topk", ["--k", "4"]),
                                            ("batchtopk", ["--k", "4"]),
                                            ("jumprelu", ["--l1", "0.1"])])
def test_saelens_export_round_trips(arch, sparsity, tmp_path):
    import torch

    out = tmp_path / "native.safetensors"
    folder = tmp_path / "saelens"
    assert main(["train-sae", "--arch", arch, *sparsity, "--node", NODE, "--out", str(out),
                 "--saelens", str(folder), *TINY]) == 0
    native, exported = load_sae(out), load_sae(folder)
    assert exported.format == "saelens" and exported.input_scale == 1.0
    assert native.input_scale != 1.0  # the scale was folded, not dropped
    x = torch.randn(64, 128, generator=torch.Generator().manual_seed(0)) * 3
    assert torch.allclose(exported.encode(x), native.encode(x), atol=1e-4)
    assert torch.allclose(exported(x), native(x), atol=1e-4)
