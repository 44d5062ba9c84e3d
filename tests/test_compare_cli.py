"""End-to-end `sae-bench compare` on ioi-tiny (small prompt counts): the typed result, report and
plot; same seed ⇒ identical files; an SAE against itself; every bad input one line, exit 2."""

from __future__ import annotations

import json

import pytest
import torch

from sae_bench.cli.main import main
from sae_bench.compare.report import plot_png, render
from sae_bench.compare.result import SCHEMA_PATH, CorrespondenceResult, json_schema
from sae_bench.compare.result import load_correspondence as load
from sae_bench.models.nodes import Node
from sae_bench.sae import SAE, save_bundle, save_native

HOOK = "blocks.0.hook_resid_post"
NODE = f"{HOOK}@END"
SMALL = ["--n-fit", "2000", "--n-eval", "400", "--permutations", "50", "--subsets", "5",
         "--quiet"]
FILES = ("correspondence.json", "correspondence.md", "correspondence.png")


def random_sae(d_in=128, d_sae=64, hook=HOOK, position="END", seed=0) -> SAE:
    g = torch.Generator().manual_seed(seed)
    return SAE(W_enc=torch.randn(d_in, d_sae, generator=g) / d_in**0.5,
               W_dec=torch.randn(d_sae, d_in, generator=g) / d_sae**0.5,
               b_enc=torch.zeros(d_sae), b_dec=torch.zeros(d_in), architecture="relu",
               hook_name=hook, position=position)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def sae_file(tmp_path_factory):
    return save_native(random_sae(), tmp_path_factory.mktemp("sae") / "rand.safetensors")


def compare(a, b, out, cache_dir, *extra):
    return main(["compare", str(a), str(b), "--out", str(out), "--cache-dir", str(cache_dir),
                 *SMALL, *extra])


@pytest.fixture(scope="module")
def vs_supervised(tmp_path_factory, sae_file, cache_dir):
    out = tmp_path_factory.mktemp("cmp")
    return compare(sae_file, "supervised", out, cache_dir), out


def test_sae_vs_supervised_writes_result_report_and_plot(vs_supervised):
    code, out = vs_supervised
    assert code == 0
    raw = json.loads((out / "correspondence.json").read_text())
    assert list(raw)[:2] == ["schema_version", "kind"] and raw["kind"] == "correspondence"
    doc = load(out / "correspondence.json")
    assert doc.node == NODE and doc.a.kind == "sae" and doc.b.kind == "supervised"
    assert doc.b.method == "lstsq" and doc.random_decoder_side == "a"
    assert doc.n_eval == 400 and doc.provenance.nodes == [NODE]
    # every alive supervised feature is listed; eval prompts hold only half of the names
    assert len(doc.features) == doc.b.n_alive < doc.b.n_latents
    assert sum(f.n_best_matching for f in doc.features) == doc.a.n_alive
    mt = doc.matching
    assert doc.b.n_alive - mt.unmatched_b == mt.n_pairs_one_to_one
    assert -1 <= mt.chance_mean_max_correlation <= mt.mean_max_correlation <= 1
    assert sum(mt.best_correlation_histogram.counts) == doc.a.n_alive
    assert sum(mt.one_to_one_histogram.counts) == mt.n_pairs_one_to_one
    assert [s.name for s in doc.geometry] == ["cosine", "svcca", "rsa"]
    for s in doc.geometry:
        assert s.value is not None and 0 < s.p_value <= 1 and s.n_permutations == 50
    assert (out / "correspondence.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (out / "correspondence.md").read_text()
    assert "| svcca |" in md and "nobody's best match" in md and "correspondence.png" in md
    # the report and plot are functions of the saved result alone (no model needed to redo them)
    assert render(doc) == md and plot_png(doc) == (out / "correspondence.png").read_bytes()


def test_too_few_prompts_warns_in_result_and_on_stderr(tmp_path, sae_file, cache_dir, capsys):
    assert compare(sae_file, "supervised", tmp_path, cache_dir) == 0
    err = capsys.readouterr().err
    doc = load(tmp_path / "correspondence.json")
    few = [w for w in doc.warnings if w.startswith("too few prompts")]
    assert few and f"sae-bench: warning: {few[0]}" in err


def test_same_seed_same_files_other_seed_other_nulls(tmp_path, sae_file, cache_dir,
                                                     vs_supervised):
    _, first = vs_supervised
    assert compare(sae_file, "supervised", tmp_path / "again", cache_dir) == 0
    for name in FILES:
        assert (tmp_path / "again" / name).read_bytes() == (first / name).read_bytes(), name
    assert compare(sae_file, "supervised", tmp_path / "seed1", cache_dir, "--seed", "1") == 0
    assert ((tmp_path / "seed1" / "correspondence.json").read_bytes()
            != (first / "correspondence.json").read_bytes())


def test_an_sae_against_itself_gives_one(tmp_path, sae_file, cache_dir):
    # 3000 prompts: enough that the chance level stays under the warning threshold
    assert compare(sae_file, sae_file, tmp_path, cache_dir, "--n-eval", "3000") == 0
    doc = load(tmp_path / "correspondence.json")
    assert doc.matching.mean_max_correlation == pytest.approx(1.0)
    assert doc.matching.mean_max_correlation_one_to_one == pytest.approx(1.0)
    assert doc.matching.n_pairs_one_to_one == doc.a.n_alive
    for s in doc.geometry:
        assert s.value == pytest.approx(1.0, abs=1e-6), s.name
    assert not [w for w in doc.warnings if w.startswith("too few prompts")]
    assert doc.features == []


def test_committed_correspondence_schema_matches_models():
    assert SCHEMA_PATH.read_text() == json_schema(), (
        "the correspondence models changed: run `python -m sae_bench.results.document` and commit")
    assert next(iter(CorrespondenceResult.model_fields)) == "schema_version"


def _bad(case: str, tmp_path):
    """(A, B, extra options, a phrase the error must contain) for one kind of bad input."""
    good = save_native(random_sae(), tmp_path / "good.safetensors")
    if case == "unknown_method":
        return "supervised:median", "supervised", ["--node", NODE], "did you mean"
    if case == "two_supervised_without_node":
        return "supervised", "supervised:mean", [], "--node"
    if case == "missing_file":
        return tmp_path / "nope.safetensors", "supervised", [], "nope.safetensors"
    if case == "bundle":
        save_bundle({Node(HOOK, "END"): random_sae()}, tmp_path / "bundle")
        return tmp_path / "bundle", "supervised", [], "bundle"
    if case == "no_position":
        path = save_native(random_sae(position=None), tmp_path / "nopos.safetensors")
        return path, "supervised", [], "--position"
    if case == "different_nodes":
        other = save_native(random_sae(hook="blocks.1.hook_resid_post"),
                            tmp_path / "l1.safetensors")
        return good, other, [], "different nodes"
    if case == "node_conflict":
        return good, "supervised", ["--node", "blocks.1.hook_resid_post@END"], "--node"
    if case == "unknown_role":
        return "supervised", "supervised", ["--node", f"{HOOK}@NOWHERE"], "NOWHERE"
    if case == "zero_permutations":
        return good, "supervised", ["--permutations", "0"], "--permutations"
    if case == "out_is_a_file":
        (tmp_path / "out").write_text("x")
        return good, "supervised", [], "is a file"
    if case == "wrong_width":  # found after the model loads: still one line, nothing written
        path = save_native(random_sae(d_in=64), tmp_path / "narrow.safetensors")
        return path, "supervised", [], "d_in=64"
    raise AssertionError(case)


BAD = ["unknown_method", "two_supervised_without_node", "missing_file", "bundle", "no_position",
       "different_nodes", "node_conflict", "unknown_role", "zero_permutations", "out_is_a_file",
       "wrong_width"]


@pytest.mark.parametrize("case", BAD)
def test_bad_input_one_line_exit_2(case, tmp_path, cache_dir, capsys):
    a, b, extra, phrase = _bad(case, tmp_path)
    out = tmp_path / "out"
    before = sorted(p.name for p in cache_dir.rglob("*"))
    code = main(["compare", str(a), str(b), "--out", str(out), "--cache-dir", str(cache_dir),
                 "--quiet", *extra])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert phrase.lower() in err.lower(), err
    assert not out.is_dir()  # nothing written
    assert sorted(p.name for p in cache_dir.rglob("*")) == before
