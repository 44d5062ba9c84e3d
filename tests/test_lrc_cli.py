"""`sae-bench reference --lrc` and `sae-bench run --comparator lrc` on ioi-tiny (small prompt
counts): rows and records present, byte-identical per seed, bad input in one line."""

from __future__ import annotations

import json

import pytest
from helpers import identity_sae

from sae_bench.cli.main import main
from sae_bench.sae import save_native

SMALL = ["--model", "ioi-tiny", "--n-fit", "1000", "--n-eval", "200", "--quiet"]
RUN = [*SMALL, "--no-control-baselines"]  # the baselines have their own tests
HOOK = "blocks.0.hook_resid_post"


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def test_reference_gains_lrc_rows_and_records(tmp_path, cache_dir):
    out = tmp_path / "ref.json"
    assert main(["reference", *SMALL, "--lrc", "--cross-section", "resid_l0_end", "--out",
                 str(out), "--cache-dir", str(cache_dir)]) == 0
    cs = json.loads(out.read_text())["cross_sections"][0]
    assert set(cs["dictionaries"]) == {"mean", "lstsq", "lrc"}
    assert all("lrc" in e["edit_accuracy"] for e in cs["edits"].values())
    (record,) = cs["lrc"]
    assert record["node"] == f"{HOOK}@END"
    assert record["downstream_object"] == "blocks.2.hook_resid_post@END"
    assert record["rank"] in [p["rank"] for p in record["sweep"]]
    assert record["experimental_attributes"] == ["S", "Pos"]


def test_lrc_fits_are_cached_and_read_back_identically(tmp_path, monkeypatch):
    """A second command with the same cache reads the LRC dictionary and its record from disk
    (it never refits) and writes the same bytes; another batch size is another entry."""
    import sae_bench.lrc.dictionary as lrc_dictionary

    sae = tmp_path / "end.safetensors"
    save_native(identity_sae(128, HOOK, position="END"), sae)
    cache = tmp_path / "cache"

    def run(name, *extra):
        assert main(["run", "--sae", str(sae), *RUN, "--comparator", "lrc", "--out",
                     str(tmp_path / name), "--cache-dir", str(cache), *extra]) == 0
        return (tmp_path / name / "results.json").read_bytes()

    fresh = run("fresh")

    def refuse(*_args, **_kwargs):
        raise AssertionError("the LRC dictionary was refitted although it is cached")

    real_fit = lrc_dictionary.fit_lrc
    monkeypatch.setattr(lrc_dictionary, "fit_lrc", refuse)
    assert run("cached") == fresh
    fits = []
    monkeypatch.setattr(lrc_dictionary, "fit_lrc", lambda *a: fits.append(1) or real_fit(*a))
    run("other-batch", "--batch-size", "100")
    assert fits == [1]


def test_run_with_lrc_comparator_is_reproducible_and_compares_three_ways(tmp_path, cache_dir):
    sae = tmp_path / "end.safetensors"
    save_native(identity_sae(128, HOOK, position="END"), sae)
    texts = []
    for name in ("a", "b"):
        assert main(["run", "--sae", str(sae), *RUN, "--comparator", "lrc", "--out",
                     str(tmp_path / name), "--cache-dir", str(cache_dir)]) == 0
        texts.append((tmp_path / name / "results.json").read_bytes())
    assert texts[0] == texts[1]
    doc = json.loads(texts[0])
    assert doc["comparator"] == "lrc"
    lrc = doc["lrc"]
    metrics = {r["metric"] for r in lrc["rows"]}
    assert {"sufficiency", "necessity", "aware_edit_accuracy_IO", "coverage_IO",
            "mean_best_f1"} <= metrics
    suff = next(r for r in lrc["rows"] if r["metric"] == "sufficiency")
    unit = doc["units"][0]["approximation"]["sufficiency"]
    # the result's supervised values are the LRC dictionary's; the row adds the lstsq one
    assert suff["lrc"] == unit["supervised"] and suff["sae"] == unit["value"]
    assert suff["labels"] is not None and suff["labels"] != suff["lrc"]
    flagged = [r for r in lrc["rows"] if r["beats_labels"] and r["loses_to_lrc"]]
    assert len(flagged) == len(lrc["between"])
    summary = (tmp_path / "a" / "summary.txt").read_text()
    assert "SAE vs label-based (lstsq) vs lrc" in summary
    # Without the lrc comparator the document has no lrc field at all.
    assert main(["run", "--sae", str(sae), *RUN, "--out", str(tmp_path / "c"),
                 "--cache-dir", str(cache_dir)]) == 0
    assert "lrc" not in json.loads((tmp_path / "c" / "results.json").read_text())


@pytest.mark.parametrize("args, message", [
    (["reference", "--model", "ioi-tiny", "--lrc", "--n-fit", "4", "--n-eval", "20",
      "--cross-section", "resid_l0_end"], "at least 5 fit prompts"),
    (["run", "--comparator", "lrcs", "--sae", "x.safetensors"], "invalid choice"),
])
def test_bad_input_is_one_line(tmp_path, cache_dir, capsys, args, message):
    code = main([*args, "--out", str(tmp_path / "out.json"), "--quiet", "--cache-dir",
                 str(cache_dir)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and message in err[0] and "Traceback" not in err[0]
    assert not (tmp_path / "out.json").exists()
