"""Score regressions: re-evaluate shipped baselines and compare with the golden files.

When a metric's maths changes on purpose: bump the task version (tasks/ioi/__init__.py) and run
`python -m sae_bench.cli.golden_refresh --refresh`, then commit the new golden files with the
change.
"""

from __future__ import annotations

import json

import pytest

from sae_bench.cli.golden_refresh import GOLDEN_SAES, evaluate_shipped, golden_path
from sae_bench.results.document import load_result
from sae_bench.results.golden import compare
from sae_bench.tasks import get_task


@pytest.fixture(scope="module")
def shipped_results(tmp_path_factory):
    """Every shipped baseline re-evaluated once, in one shared context."""
    tmp = tmp_path_factory.mktemp("golden")
    return evaluate_shipped(GOLDEN_SAES, tmp / "runs", tmp / "cache")


def test_every_shipped_baseline_has_a_golden_file():
    assert len(GOLDEN_SAES) == 16
    version = get_task("ioi").version
    missing = [n for n in GOLDEN_SAES if not golden_path(version, n).exists()]
    assert not missing, (f"no golden file for {missing} at task version {version}: run "
                         "`python -m sae_bench.cli.golden_refresh --refresh` after bumping the "
                         "version")


@pytest.mark.slow
@pytest.mark.parametrize("name", GOLDEN_SAES)
def test_scores_match_golden(name, shipped_results):
    golden = json.loads(golden_path(get_task("ioi").version, name).read_text())
    drift = compare(golden, load_result(shipped_results[name]))
    assert not drift, f"{name}: scores drifted from the golden file:\n" + "\n".join(drift)


def test_compare_reports_drift_readably(monkeypatch):
    """A changed metric shows its key, old and new value, tolerance and reason."""
    from sae_bench.results import golden

    golden_doc = {"metrics": {
        "unit/u/approximation/sufficiency": {"value": 1.0, "tolerance": 1e-4,
                                             "reason": "float noise"},
        "unit/u/approximation/fvu": {"value": 0.1, "tolerance": 1e-4, "reason": "float noise"},
    }}
    monkeypatch.setattr(golden, "flatten", lambda doc: {
        "unit/u/approximation/sufficiency": 0.9, "unit/u/approximation/fvu": 0.10001,
        "unit/u/approximation/l0": 3.0})
    lines = compare(golden_doc, doc=None)
    assert lines == [
        "unit/u/approximation/sufficiency: was 1, now 0.9 (|diff| 0.1 > tolerance 0.0001: "
        "float noise)",
        "unit/u/approximation/l0: new metric, not in the golden file",
    ]


def test_golden_command_pins_and_checks_a_result(tmp_path, capsys):
    """Users' CI: `sae-bench golden RESULTS --write` once, then `--check` after every run."""
    from sae_bench.cli.golden_refresh import SAE_DIR
    from sae_bench.cli.main import main

    shipped = SAE_DIR.parent / "runs" / "topk-k4-task" / "results.json"
    golden = tmp_path / "golden.json"
    assert main(["golden", str(shipped), "--write", str(golden)]) == 0
    assert main(["golden", str(shipped), "--check", str(golden)]) == 0
    assert "within tolerance" in capsys.readouterr().out

    raw = json.loads(shipped.read_text())
    raw["units"][0]["approximation"]["sufficiency"]["value"] += 0.01
    drifted = tmp_path / "drifted.json"
    drifted.write_text(json.dumps(raw))
    assert main(["golden", str(drifted), "--check", str(golden)]) == 1
    out = capsys.readouterr().out
    assert "approximation/sufficiency: was" in out and "1 metric(s) drifted" in out

    raw["provenance"]["seed"] = 3
    drifted.write_text(json.dumps(raw))
    assert main(["golden", str(drifted), "--check", str(golden)]) == 2
    assert "seed 0 vs 3" in capsys.readouterr().err
    golden.write_text('{"golden_schema": "1.0", "metrics": {"x": 1}}')
    assert main(["golden", str(shipped), "--check", str(golden)]) == 2
    err = capsys.readouterr().err
    assert "not a schema 1.0 golden file" in err and err.count("\n") == 1
