"""End-to-end `sae-bench reference` and `sae-bench run` on ioi-tiny (small prompt counts)."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import identity_sae

from sae_bench.cli.main import main
from sae_bench.sae import save_native

# The control baselines have their own tests (test_baselines_*); here they only cost time.
SMALL = ["--n-fit", "2000", "--n-eval", "400", "--quiet", "--no-control-baselines"]
NODE_HOOK = "blocks.0.hook_resid_post"


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def identity_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("sae") / "identity.safetensors"
    save_native(identity_sae(128, NODE_HOOK, position=None), path)
    return path


def run(args, cache_dir, *override):
    return main([*args, *SMALL, *override, "--cache-dir", str(cache_dir)])


def test_reference_document(tmp_path, cache_dir, capsys):
    out = tmp_path / "ref.json"
    # The task's default 20k fit prompts: ~100 per name, which the mean features need.
    args = ["reference", "--model", "ioi-tiny", "--out", str(out), "--n-fit", "20000",
            "--n-eval", "500", "--quiet", "--cache-dir", str(cache_dir)]
    assert main(args) == 0
    doc = json.loads(out.read_text())
    assert list(doc)[0] == "schema_version"
    assert doc["model"]["accuracy"] > 0.95 and doc["model"]["mean_logit_diff"] > 3
    names = [cs["name"] for cs in doc["cross_sections"]]
    assert names[0] == "resid_l0_end"
    main_cs = doc["cross_sections"][0]
    for method in ("mean", "lstsq"):
        scores = main_cs["dictionaries"][method]
        assert scores["sufficiency"] > 0.9 and scores["necessity"] > 0.85
    for attr, edit in main_cs["edits"].items():
        assert 0 <= edit["no_intervention_agreement"] <= 1
        if edit["causally_relevant"]:
            assert edit["edit_accuracy"]["mean"] > 0.7, attr
    assert "resid_l0_end" in capsys.readouterr().out


def test_identity_sae_is_perfect(tmp_path, cache_dir, identity_file):
    out = tmp_path / "run"
    # Five roles' control sweeps dominate this run; 100 eval prompts show the identity as well.
    code = run(["run", "--sae", str(identity_file), "--model", "ioi-tiny", "--out", str(out)],
               cache_dir, "--n-eval", "100")
    assert code == 0
    doc = json.loads((out / "results.json").read_text())
    assert list(doc)[0] == "schema_version"
    units = {u["name"]: u for u in doc["units"]}
    # No position in the file: scored at every role of the hook.
    assert set(units) == {f"{NODE_HOOK}@{r}" for r in ("IO", "S1", "S1+1", "S2", "END")}
    for name, unit in units.items():
        approx = unit["approximation"]
        assert abs(approx["sufficiency"]["value"] - 1) < 1e-4
        if approx["necessity"]["value"] is None:  # nodes whose ablation barely matters
            assert "barely matter" in approx["necessity"]["reason"]
            assert not name.endswith("@END")
        else:
            assert abs(approx["necessity"]["value"] - 1) < 1e-4
        node = unit["per_node"][0]["approximation"]
        assert node["fvu"]["value"] < 1e-6
        assert abs(node["shrinkage"]["value"] - 1) < 1e-4
        assert approx["sufficiency"]["supervised"] is not None
    prov = doc["provenance"]
    assert prov["model"] == "ioi-tiny" and prov["task_version"] == "1.1.0"
    assert sorted(prov["nodes"]) == sorted(units)
    assert len(next(iter(prov["sae_files"].values()))) == 64  # sha256
    assert (out / "summary.txt").read_text().startswith("ioi-tiny on ioi")


def test_same_seed_same_file_different_seed_different(tmp_path, cache_dir):
    sae = tmp_path / "end.safetensors"
    save_native(identity_sae(128, NODE_HOOK, position="END"), sae)
    outs = []
    for name, seed in (("a", "0"), ("b", "0"), ("c", "1")):
        out = tmp_path / name
        args = ["run", "--sae", str(sae), "--model", "ioi-tiny", "--out", str(out), "--seed", seed]
        assert run(args, cache_dir) == 0
        outs.append((out / "results.json").read_bytes())
    assert outs[0] == outs[1]
    assert outs[0] != outs[2]


def test_bundle_scores_a_cross_section(tmp_path, cache_dir):
    heads = [f"blocks.0.attn.hook_z:{h}@END" for h in range(4)]
    entries = []
    for h in range(4):
        path = tmp_path / f"h{h}.safetensors"
        save_native(identity_sae(32, "blocks.0.attn.hook_z", position="END", head=h), path)
        entries.append({"node": heads[h], "path": path.name})
    (tmp_path / "bundle.json").write_text(json.dumps({"saes": entries}))
    out = tmp_path / "run"
    assert run(["run", "--sae", str(tmp_path), "--model", "ioi-tiny", "--out", str(out)],
               cache_dir) == 0
    doc = json.loads((out / "results.json").read_text())
    (unit,) = doc["units"]
    assert unit["name"] == "l0_heads_out" and unit["nodes"] == heads
    assert abs(unit["approximation"]["sufficiency"]["value"] - 1) < 1e-4


def test_random_sae_scores_below_identity(tmp_path, cache_dir):
    from sae_bench.sae import SAE

    g = torch.Generator().manual_seed(0)
    sae = SAE(
        W_enc=torch.randn(128, 512, generator=g) / 11,
        W_dec=torch.randn(512, 128, generator=g) / 22,
        b_enc=torch.zeros(512), b_dec=torch.zeros(128), architecture="relu",
        hook_name=NODE_HOOK, position="END",
    )
    path = tmp_path / "random.safetensors"
    save_native(sae, path)
    out = tmp_path / "run"
    assert run(["run", "--sae", str(path), "--model", "ioi-tiny", "--out", str(out)],
               cache_dir) == 0
    doc = json.loads((out / "results.json").read_text())
    node = doc["units"][0]["per_node"][0]
    assert node["approximation"]["fvu"]["value"] > 0.5
    assert node["interpretability"]["coverage_IO"]["value"] < 0.2


def test_second_context_reuses_cached_dictionaries(tmp_path):
    from sae_bench.engine.cache import DictionaryCache
    from sae_bench.engine.context import EvalContext
    from sae_bench.models.nodes import Node
    from sae_bench.models.registry import load_model
    from sae_bench.progress import Progress
    from sae_bench.tasks import get_task

    model, task = load_model("ioi-tiny"), get_task("ioi")
    node = Node(NODE_HOOK, "END")

    def context():
        return EvalContext(model=model, model_name="ioi-tiny", task=task, seed=0, n_fit=500,
                           n_eval=50, cache=DictionaryCache(tmp_path), progress=Progress(False))

    first = context()
    fitted = first.dictionaries([node])[node]
    assert "fit" in first._memo, "the first run fits on fit prompts"
    second = context()
    cached = second.dictionaries([node])[node]
    assert "fit" not in second._memo, "the second run never builds the fit prompts"
    for method in fitted:
        assert torch.equal(cached[method].mean, fitted[method].mean)
        assert torch.equal(cached[method].features["IO"], fitted[method].features["IO"])
    # Another seed is another key.
    other = EvalContext(model=model, model_name="ioi-tiny", task=task, seed=1, n_fit=500,
                        n_eval=50, cache=DictionaryCache(tmp_path), progress=Progress(False))
    other.dictionaries([node])
    assert "fit" in other._memo


def test_several_saes_share_one_context_and_match_separate_runs(tmp_path, cache_dir):
    """`run --sae A --sae B` computes the shared pieces once; each result must still be the file
    a run of that SAE alone writes."""
    from sae_bench.sae import SAE

    g = torch.Generator().manual_seed(1)
    paths = [tmp_path / "identity.safetensors", tmp_path / "random.safetensors"]
    save_native(identity_sae(128, NODE_HOOK, position="END"), paths[0])
    save_native(SAE(W_enc=torch.randn(128, 256, generator=g) / 11,
                    W_dec=torch.randn(256, 128, generator=g) / 16, b_enc=torch.zeros(256),
                    b_dec=torch.zeros(128), architecture="relu", hook_name=NODE_HOOK,
                    position="END"), paths[1])
    together = tmp_path / "together"
    assert run(["run", "--sae", str(paths[0]), "--sae", str(paths[1]), "--model", "ioi-tiny",
                "--out", str(together)], cache_dir) == 0
    for path in paths:
        alone = tmp_path / f"alone-{path.stem}"
        assert run(["run", "--sae", str(path), "--model", "ioi-tiny", "--out", str(alone)],
                   cache_dir) == 0
        assert (together / path.stem / "results.json").read_bytes() == \
            (alone / "results.json").read_bytes()


def test_several_saes_with_one_name_are_refused(tmp_path, cache_dir, identity_file, capsys):
    other = tmp_path / "identity.safetensors"
    other.write_bytes(identity_file.read_bytes())
    code = run(["run", "--sae", str(identity_file), "--sae", str(other), "--model", "ioi-tiny",
                "--out", str(tmp_path / "runs")], cache_dir)
    err = capsys.readouterr().err
    assert code == 2 and "two SAEs would write" in err and "rename one" in err
    assert not (tmp_path / "runs").exists()
    (tmp_path / "runs").write_text("a file, not a directory")
    code = run(["run", "--sae", str(identity_file), "--sae", str(tmp_path / "x.safetensors"),
                "--model", "ioi-tiny", "--out", str(tmp_path / "runs")], cache_dir)
    err = capsys.readouterr().err
    assert code == 2 and "is a file" in err and err.count("\n") == 1
    assert (tmp_path / "runs").read_text() == "a file, not a directory"


def test_fit_activations_are_cached_on_disk(tmp_path, monkeypatch):
    """A fresh process with a warm cache must not run the fit prompts through the model again
    (GPT-2: minutes), and must get the same activations back."""
    from sae_bench.engine import collect
    from sae_bench.engine.cache import DictionaryCache
    from sae_bench.engine.context import EvalContext
    from sae_bench.models.nodes import Node
    from sae_bench.models.registry import load_model
    from sae_bench.progress import Progress
    from sae_bench.tasks import get_task

    model, task = load_model("ioi-tiny"), get_task("ioi")
    node = Node(NODE_HOOK, "END")

    def context(n_fit=300):
        return EvalContext(model=model, model_name="ioi-tiny", task=task, seed=0, n_fit=n_fit,
                           n_eval=50, cache=DictionaryCache(tmp_path), progress=Progress(False))

    first = context().fit_activations([node])[node]
    assert first.shape == (300, 128)

    def no_forward(*args, **kwargs):
        raise AssertionError("fit activations were recomputed despite the cache")

    with monkeypatch.context() as m:
        m.setattr(collect, "node_activations", no_forward)
        assert torch.equal(context().fit_activations([node])[node], first)
    # Another prompt count is another entry; a corrupt entry is recomputed, not trusted.
    assert context(n_fit=200).fit_activations([node])[node].shape == (200, 128)
    for path in (tmp_path / "activations").iterdir():
        path.write_bytes(b"not safetensors")
    assert torch.equal(context().fit_activations([node])[node], first)


def test_comparator_is_chosen_recorded_and_warned_about(tmp_path, cache_dir):
    """lstsq by default (the paper's recommendation), `--comparator mean` on request; with 2,000
    fit prompts a name has ~10 of them, too few for a trustworthy feature: a stored warning."""
    sae = tmp_path / "end.safetensors"
    save_native(identity_sae(128, NODE_HOOK, position="END"), sae)
    docs = {}
    for comparator in ("lstsq", "mean"):
        out = tmp_path / comparator
        assert run(["run", "--sae", str(sae), "--model", "ioi-tiny", "--out", str(out),
                    "--comparator", comparator], cache_dir) == 0
        docs[comparator] = json.loads((out / "results.json").read_text())
    for comparator, doc in docs.items():
        assert doc["comparator"] == comparator
        assert doc["warnings"] and "--n-fit" in doc["warnings"][0]
        assert f"supervised {comparator} dictionary" in (tmp_path / comparator /
                                                         "summary.txt").read_text()
    fvu = {c: d["units"][0]["per_node"][0]["approximation"]["fvu"]["supervised"]
           for c, d in docs.items()}
    assert fvu["lstsq"] != fvu["mean"]
