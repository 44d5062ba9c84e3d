"""Leaderboard reports from real result documents (two small SAEs run on ioi-tiny).

The per-axis ranking, plots at scale and the page in a browser: tests/test_report.py."""

from __future__ import annotations

import csv
import json
from html.parser import HTMLParser
from pathlib import Path

import pytest
import torch
from helpers import identity_sae

from sae_bench.errors import UserError
from sae_bench.report.leaderboard import write_leaderboard
from sae_bench.report.rows import Row
from sae_bench.report.rows import rank as rank_rows
from sae_bench.sae import SAE, save_native

HOOK = "blocks.0.hook_resid_post"
# Pareto fronts against L0, edit accuracy vs budget, weight removed vs budget (the results carry
# weight_removed_{attribute}_k{k}), F1 histogram.
PLOTS = 4


def _random_sae(d_in: int, d_sae: int) -> SAE:
    g = torch.Generator().manual_seed(0)
    return SAE(
        W_enc=torch.randn(d_in, d_sae, generator=g) / d_in**0.5,
        W_dec=torch.randn(d_sae, d_in, generator=g) / d_sae**0.5,
        b_enc=torch.zeros(d_sae), b_dec=torch.zeros(d_in),
        architecture="relu", hook_name=HOOK, head=None, position="END",
    )


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two real `sae-bench run` documents: an exact (identity) SAE and a random one."""
    from sae_bench.cli.main import main

    tmp = tmp_path_factory.mktemp("lb")
    paths = []
    for name, sae in (("identity", identity_sae(128, HOOK, position="END")),
                      ("random", _random_sae(128, 64))):
        f = save_native(sae, tmp / f"{name}.safetensors")
        out = tmp / name
        rc = main(["run", "--sae", str(f), "--model", "ioi-tiny", "--out", str(out), "--quiet",
                   "--n-fit", "1000", "--n-eval", "100", "--cache-dir", str(tmp / "c")])
        assert rc == 0
        paths.append(out / "results.json")
    return paths


def _snapshot(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())}


def test_writes_all_files(results: list[Path], tmp_path: Path) -> None:
    written = write_leaderboard(results, tmp_path / "lb")
    names = {p.name for p in written}
    assert {"leaderboard.md", "leaderboard.csv", "leaderboard.html"} <= names
    assert len([n for n in names if n.endswith(".png")]) == PLOTS
    assert all(p.exists() and p.stat().st_size > 0 for p in written)
    # Only the listed files: no temp files left behind.
    assert sorted(p.name for p in (tmp_path / "lb").iterdir()) == sorted(names)
    md = (tmp_path / "lb" / "leaderboard.md").read_text()
    for heading in ("### Control", "### Interpretability", "### Approximation",
                    "### Occlusion", "### Over-splitting", "### Plots"):
        assert heading in md
    # unranked reference rows; the supervised one names the dictionary its values come from
    assert "*supervised dictionary (lstsq)*" in md and "*no edit" in md


def test_reference_row_and_csv_name_each_comparator(results: list[Path], tmp_path: Path) -> None:
    """Results scored against different supervised dictionaries: the reference row says they
    differ, and each CSV row says which dictionary its `_supervised` values come from."""
    doc = json.loads(results[1].read_text())
    doc["comparator"] = "mean"
    mean_doc = tmp_path / "mean" / "results.json"
    mean_doc.parent.mkdir()
    mean_doc.write_text(json.dumps(doc))
    write_leaderboard([results[0], mean_doc], tmp_path / "lb")
    md = (tmp_path / "lb" / "leaderboard.md").read_text()
    assert "*supervised dictionary (lstsq / mean: differs per SAE, see leaderboard.csv)*" in md
    with open(tmp_path / "lb" / "leaderboard.csv", newline="") as fh:
        assert {r["sae"]: r["comparator"] for r in csv.DictReader(fh)} == {
            "identity": "lstsq", "mean": "mean"}


def test_csv_rows_and_ranking(results: list[Path], tmp_path: Path) -> None:
    write_leaderboard(list(reversed(results)), tmp_path)
    with open(tmp_path / "leaderboard.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2  # one per SAE (one unit each)
    # Every metric of the documents, generically, each with its supervised value.
    doc = json.loads(results[0].read_text())
    for col in doc["metric_info"]:
        assert col in rows[0] and f"{col}_supervised" in rows[0]
    assert rows[0]["sufficiency_supervised"] != ""
    # Sufficiency is "closest to 1": the exact identity SAE ranks first on approximation
    # whatever the input order.
    by_name = {r["sae"]: r for r in rows}
    assert by_name["identity"]["rank_approximation"] == "1"
    assert by_name["random"]["rank_approximation"] == "2"
    assert sorted(r["rank_control"] for r in rows) == ["1", "2"]
    assert by_name["identity"]["architecture"] == "relu" and by_name["random"]["d_sae"] == "64"
    assert by_name["identity"]["training_data"] == "unspecified"  # no <arch>-<k>-<data> name


def _row(name: str, value: float | None) -> Row:
    from sae_bench.report.rows import GroupKey

    return Row(group=GroupKey("t", "1", "m"), sae=name, architecture="relu", d_sae="1", k="n/a",
               unit="u", values={"x": value}, supervised={})


@pytest.mark.parametrize(("direction", "expected"), [
    ("one", ["a", "c", "b", "none"]),
    ("higher", ["b", "a", "c", "none"]),
    ("lower", ["c", "a", "b", "none"]),
])
def test_rank_directions(direction: str, expected: list[str]) -> None:
    rows = [_row("none", None), _row("b", 3.0), _row("a", 1.1), _row("c", 0.5)]
    assert [r.sae for r in rank_rows(rows, "x", direction)] == expected


def test_byte_identical_rerun(results: list[Path], tmp_path: Path) -> None:
    write_leaderboard(results, tmp_path / "a")
    write_leaderboard(list(reversed(results)), tmp_path / "b")
    assert _snapshot(tmp_path / "a") == _snapshot(tmp_path / "b")


def test_task_version_gets_own_table(results: list[Path], tmp_path: Path) -> None:
    doc = json.loads(results[0].read_text())
    doc["provenance"]["task_version"] = "9.9.9"
    other = tmp_path / "identity_v9.json"
    other.write_text(json.dumps(doc))
    written = write_leaderboard([*results, other], tmp_path / "lb")
    md = (tmp_path / "lb" / "leaderboard.md").read_text()
    assert "## task ioi v1.1.0 on model ioi-tiny" in md
    assert "## task ioi v9.9.9 on model ioi-tiny" in md
    assert len([p for p in written if p.suffix == ".png"]) == 2 * PLOTS
    with open(tmp_path / "lb" / "leaderboard.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    v9 = [r for r in rows if r["task_version"] == "9.9.9"]
    assert [(r["sae"], r["rank_approximation"]) for r in v9] == [("identity_v9", "1")]


@pytest.mark.parametrize("content", ["{not json", json.dumps({"schema_version": "0.1"}),
                                     json.dumps({"schema_version": "1.0", "kind": 3})])
def test_bad_input_writes_nothing(results: list[Path], tmp_path: Path, content: str) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    out = tmp_path / "out"
    with pytest.raises(UserError):
        write_leaderboard([*results, bad], out)
    assert not out.exists() or not any(out.iterdir())
    with pytest.raises(UserError):
        write_leaderboard([tmp_path / "missing.json"], out)
    assert not out.exists() or not any(out.iterdir())


class _Imgs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.srcs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.srcs.append(dict(attrs).get("src") or "")


def test_html_self_contained(results: list[Path], tmp_path: Path) -> None:
    write_leaderboard(results, tmp_path)
    text = (tmp_path / "leaderboard.html").read_text()
    parser = _Imgs()
    parser.feed(text)
    parser.close()
    assert len(parser.srcs) == PLOTS
    assert all(s.startswith("data:image/png;base64,") for s in parser.srcs)
    assert text.count('<img src="data:image/png;base64,') == PLOTS
    assert "http://" not in text and "https://" not in text  # no external resources
    assert "<link" not in text and "<script src" not in text and "@import" not in text
