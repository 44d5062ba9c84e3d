"""Reports people can read: per-axis ranking, collapsed columns, plots at 100 SAEs, the page in a
real headless Chromium. Built on the shipped baselines' results (no model is loaded)."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import random
from pathlib import Path

import pytest
from cdp import Browser, find_chromium

from sae_bench.report import plots as report_plots
from sae_bench.report import structure as report_structure
from sae_bench.report import tables as report_tables
from sae_bench.report.groups import load_groups
from sae_bench.report.leaderboard import write_leaderboard
from sae_bench.report.rows import Group, GroupKey, MetricMeta, Row

ROOT = Path(__file__).resolve().parents[1]
RUNS = sorted((ROOT / "reports" / "ioi-tiny" / "runs").glob("*/results.json"))


def _group() -> Group:
    assert len(RUNS) == 16, "the 16 shipped baselines"
    (group,) = load_groups(RUNS)
    return group


def _table(rep: report_structure.Report, axis: str) -> report_structure.AxisTable:
    return next(t for t in rep.tables if t.axis == axis)


def test_control_ranks_the_steerable_saes_first() -> None:
    rep = report_tables.build(_group())
    control = _table(rep, "control")
    # The two SAEs that edit IO with two latents lead; reconstruction quality does not decide.
    assert {r.sae for r in control.rows[:2]} == {"topk-k4-task", "batchtopk-k4-task"}
    # No SAE reaches the supervised accuracy on every relevant attribute, so the ranking is by
    # the mean k=2 accuracy over relevant attributes, best first.
    key = f"mean_edit_accuracy_k{report_tables.EDIT_BUDGET}"
    means = [control.derived[(r.sae, r.unit)][key] for r in control.rows]
    assert means == sorted(means, key=lambda v: -(v or 0.0))
    assert control.ranks == list(range(1, 17))
    assert ("batchtopk-k4-task", control.rows[0].unit) in control.front  # sparsest, steerable


def test_irrelevant_attribute_is_left_out_with_a_note() -> None:
    group = _group()
    group.rows = group.rows[:4]
    for r in group.rows:  # as the shipped results mark Pos at ioi-tiny's main node
        r.relevant["Pos"] = False
    rep = report_tables.build(group)
    assert "Pos" in group.attributes and "Pos" not in rep.relevant
    assert any(n.startswith("Pos is not causally relevant") for n in rep.not_relevant)
    for t in rep.tables:
        assert not [c.name for c in t.columns if "Pos" in c.name.split("_")], t.axis
    plots = report_plots.render_all(rep)
    edit = next(p for p in plots if p.kind == "edit_accuracy")
    assert any("Pos" in n for n in edit.notes)


def test_columns_equal_for_every_sae_collapse_with_a_note() -> None:
    group = _group()
    for i, r in enumerate(group.rows):
        r.values["coverage_IO"] = 0.25
        r.values["fvu"] = 0.1 * i  # differs: stays
    rep = report_tables.build(group)
    interp = _table(rep, "interpretability")
    assert "coverage_IO" not in [c.name for c in interp.columns]
    assert any(n.startswith("`coverage_IO` is 0.250 for every SAE") for n in interp.collapsed)
    assert "fvu" in [c.name for c in _table(rep, "approximation").columns]


def test_null_supervised_and_absent_metrics(tmp_path: Path) -> None:
    """A metric with `supervised: null` gets no comparator; one absent from some documents is
    n/a there; one absent everywhere has no column. Nothing is made up."""
    docs = []
    for i, p in enumerate(RUNS[:4]):
        doc = json.loads(p.read_text())
        unit = doc["units"][0]
        unit["approximation"]["sufficiency"]["supervised"] = None
        if i == 0:
            del unit["approximation"]["necessity"]
        for node in unit["per_node"]:
            node["approximation"].pop("shrinkage", None)
        out = tmp_path / p.parent.name / "results.json"
        out.parent.mkdir()
        out.write_text(json.dumps(doc))
        docs.append(out)
    write_leaderboard(docs, tmp_path / "lb")
    md = (tmp_path / "lb" / "leaderboard.md").read_text()
    approx = md.split("### Approximation")[1].split("###")[0]
    lines = approx.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| rank"))
    header, ref = lines[start], lines[start + 2]
    cols = [c.strip() for c in header.strip("|").split("|")]
    cells = [c.strip() for c in ref.strip("|").split("|")]
    assert "shrinkage" not in cols
    assert cells[cols.index("sufficiency")] == "n/a"  # no supervised comparator shown
    assert "| n/a |" in approx  # the document without necessity
    html = (tmp_path / "lb" / "leaderboard.html").read_text()
    assert "supervised dictionary: " in html  # other cells keep their comparator


def test_new_metric_flows_through_without_code_changes(tmp_path: Path) -> None:
    docs = []
    for i, p in enumerate(RUNS[:3]):
        doc = json.loads(p.read_text())
        doc["units"][0]["control"]["steer_score_IO"] = {"value": 0.1 * i, "supervised": 0.9,
                                                        "reason": None}
        doc["metric_info"]["steer_score_IO"] = {
            "category": "control", "direction": "higher", "range": [0.0, 1.0],
            "description": "a metric the report code has never heard of"}
        out = tmp_path / p.parent.name / "results.json"
        out.parent.mkdir()
        out.write_text(json.dumps(doc))
        docs.append(out)
    write_leaderboard(docs, tmp_path / "lb")
    control = (tmp_path / "lb" / "leaderboard.md").read_text().split("### Control")[1]
    assert "steer_score_IO" in control.split("###")[0]
    html = (tmp_path / "lb" / "leaderboard.html").read_text()
    assert 'title="a metric the report code has never heard of (higher is better' in html
    assert "steer_score_IO_supervised" in (tmp_path / "lb" / "leaderboard.csv").read_text()


def test_weight_removed_plot_reads_per_budget_metrics() -> None:
    group = _group()
    group.rows = group.rows[:4]  # enough to draw; fewer plots to render
    for r in group.rows:  # results without per-budget weights: no plot, a note instead
        for d in (r.values, r.supervised):
            for key in [k for k in d if k.startswith("weight_removed_") and "_k" in k]:
                del d[key]
    rep = report_tables.build(group)
    assert not any(p.kind == "weight_removed" for p in report_plots.render_all(rep))
    assert any("weight_removed_{attribute}_k{k}" in n for n in rep.plot_notes)
    for r in group.rows:
        for k in (1, 2, 4, 8, 16, 32):
            r.values[f"weight_removed_IO_k{k}"] = min(1.0, 0.05 * k)
            r.supervised[f"weight_removed_IO_k{k}"] = 0.5
    rep = report_tables.build(group)
    plots = report_plots.render_all(rep)
    assert [p for p in plots if p.kind == "weight_removed"]
    assert report_plots.weight_curves(group.rows, rep.relevant) == {"IO": [1, 2, 4, 8, 16, 32]}


def _row(name: str, l0: float, y: float | None) -> Row:
    return Row(group=GroupKey("t", "1", "m"), sae=name, architecture="relu", d_sae="1", k="n/a",
               unit="u", values={"l0": l0, "y": y}, supervised={})


def test_pareto_front() -> None:
    rows = [_row("sparse-bad", 1, 0.1), _row("mid", 5, 0.5), _row("dominated", 6, 0.4),
            _row("dense-good", 50, 0.9), _row("tie", 5, 0.5), _row("missing", 0.5, None)]
    meta = MetricMeta("x", "higher", "")
    col = report_structure.Column("y", meta)
    table = report_structure.AxisTable("x", "", "", [col], [], [], set(), {}, [], [], [])

    def key(r: Row) -> tuple:
        return ((0, -r.values["y"]) if r.values["y"] is not None else (1, 0.0),)

    front = report_tables.pareto_front(rows, key)
    assert {s for s, _ in front} == {"sparse-bad", "mid", "tie", "dense-good"}
    assert table.value(rows[0], col) == 0.1


def _synthetic(group: Group, n: int) -> list[Row]:
    """`n` rows shaped like the real ones, of 7 architectures and 3 training sets."""
    rng = random.Random(0)
    archs = ["relu", "gated", "topk", "batchtopk", "jumprelu", "matryoshka", "p-anneal"]
    out = []
    for i in range(n):
        src = group.rows[i % len(group.rows)]
        arch, data = archs[i % len(archs)], ("task", "text", "web")[i % 3]
        jitter = {k: (v * rng.uniform(0.7, 1.3) if v is not None else None)
                  for k, v in src.values.items()}
        curves = {a: {k: min(1.0, v * rng.uniform(0.8, 1.2)) for k, v in c.items()}
                  for a, c in src.edit_curves.items()}
        out.append(dataclasses.replace(
            src, sae=f"synthetic{i:02d}-{arch}-{data}", architecture=arch, training_data=data,
            values=jitter, edit_curves=curves,
            top_f1={n: [min(1.0, f * rng.uniform(0.8, 1.4)) for f in fs]
                    for n, fs in src.top_f1.items()}))
    return out


def test_plots_stay_readable_with_100_saes() -> None:
    """16 real + 84 synthetic rows: the legend lies outside every axes and inside the figure."""
    group = _group()
    group.rows = group.rows + _synthetic(group, 84)
    for r in group.rows:
        for k in (1, 2, 4, 8, 16, 32):
            r.values[f"weight_removed_IO_k{k}"] = 0.02 * k
    rep = report_tables.build(group)
    panels = [m for t in rep.tables for m in t.headline_metrics]
    figures = {
        "pareto": report_plots.pareto_figure(group.rows, panels, group.meta),
        "edit": report_plots.edit_curves_figure(group.rows, rep.relevant),
        "weight": report_plots.weight_removed_figure(
            group.rows, report_plots.weight_curves(group.rows, rep.relevant)),
        "f1": report_plots.f1_histogram_figure(group.rows, ["a note"]),
    }
    import matplotlib.pyplot as plt

    try:
        for name, fig in figures.items():
            fig.canvas.draw()
            renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
            (legend,) = fig.legends
            box = legend.get_window_extent(renderer)
            # One entry per architecture and training set, never one per SAE.
            assert len(legend.get_texts()) <= 7 + 3 + 3, name
            assert fig.bbox.x0 <= box.x0 and box.x1 <= fig.bbox.x1, name
            assert fig.bbox.y0 <= box.y0 and box.y1 <= fig.bbox.y1, name
            for ax in fig.axes:
                assert not box.overlaps(ax.get_tightbbox(renderer)), (name, ax.get_title())
    finally:
        for fig in figures.values():
            plt.close(fig)


def test_html_sorts_and_filters_in_headless_chromium(tmp_path: Path) -> None:
    exe = find_chromium()
    if exe is None:
        message = "Chromium not installed (apt-get install -y chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}: CI must run the browser test")
        pytest.skip(message)
    write_leaderboard(RUNS, tmp_path / "lb")
    page = (tmp_path / "lb" / "leaderboard.html").resolve()
    browser = Browser(exe, tmp_path / "profile")
    try:
        browser.open(page.as_uri())
        assert browser.eval("document.title") == "SAE leaderboard"
        table = "#g0-approximation"

        def index(metric: str) -> int:
            return browser.eval(f"Array.from(document.querySelectorAll('{table} thead th'))"
                                f".findIndex(th => th.textContent === {json.dumps(metric)})")

        def column(metric: str) -> list[str]:
            """The visible ranked rows' cells of a column, top to bottom."""
            return browser.eval(
                f"Array.from(document.querySelectorAll('{table} tbody:last-of-type tr'))"
                ".filter(r => r.style.display !== 'none')"
                f".map(r => r.cells[{index(metric)}].textContent)")

        def click_header(metric: str) -> None:
            browser.click(f"{table} thead th:nth-child({index(metric) + 1})")

        # Sort by L0 with a real mouse click: ascending (lower is better), again: reversed.
        click_header("l0")
        l0 = [float(x) for x in column("l0")]
        assert l0 == sorted(l0) and len(l0) == 16
        click_header("l0")
        assert [float(x) for x in column("l0")] == sorted(l0, reverse=True)
        # Sufficiency is "closest to 1 is best": the first click orders by |x - 1|.
        click_header("sufficiency")
        dist = [abs(float(x) - 1) for x in column("sufficiency")]
        assert dist == sorted(dist) and dist != [abs(float(x) - 1) for x in column("l0")]
        # The reference row stays on top, unsorted.
        assert browser.eval(f"document.querySelector('{table} tbody.ref td:nth-child(3)')"
                            ".textContent") == "supervised dictionary (lstsq)"
        # Filter: type into the box; only matching rows stay visible.
        browser.eval("(() => {const i = document.querySelector("
                     "'input[data-table=\"g0-approximation\"]'); i.value = 'topk';"
                     "i.dispatchEvent(new Event('input'));})()")
        visible = column("sae")
        assert len(visible) == 8 and all("topk" in v for v in visible)
        # Definitions on hover, plots inline, and no script error on the page.
        assert "active latents" in browser.eval(
            f"document.querySelectorAll('{table} thead th')[{index('l0')}].title")
        assert browser.eval("Array.from(document.images).every(i => i.complete && "
                            "i.naturalWidth > 0 && i.src.startsWith('data:image/png'))")
        assert browser.exceptions() == []
    finally:
        browser.close()


def test_missing_browser_fails_in_ci(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """CI must not go green by skipping the browser test."""
    import sys

    monkeypatch.setattr(sys.modules[__name__], "find_chromium", lambda: None)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must run the browser test"):
        test_html_sorts_and_filters_in_headless_chromium(tmp_path)
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception):
        test_html_sorts_and_filters_in_headless_chromium(tmp_path)


def test_several_units_rank_and_plot_separately(tmp_path: Path) -> None:
    docs = []
    for p in RUNS[:3]:
        doc = json.loads(p.read_text())
        other = json.loads(json.dumps(doc["units"][0]))
        other["name"] = "second-unit"
        doc["units"].append(other)
        out = tmp_path / p.parent.name / "results.json"
        out.parent.mkdir()
        out.write_text(json.dumps(doc))
        docs.append(out)
    written = {p.name for p in write_leaderboard(docs, tmp_path / "lb")}
    assert {"pareto_l0_ioi-v1.1.0-ioi-tiny-second-unit.png",
            "pareto_l0_ioi-v1.1.0-ioi-tiny-blocks.0.hook_resid_post_END.png"} <= written
    with open(tmp_path / "lb" / "leaderboard.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for unit in ("second-unit", "blocks.0.hook_resid_post@END"):
        assert sorted(r["rank_control"] for r in rows if r["unit"] == unit) == ["1", "2", "3"]
    md = (tmp_path / "lb" / "leaderboard.md").read_text()
    assert "| rank | front | sae | architecture | data | unit |" in md


def _group_with_io_unused_at_a_second_unit() -> tuple[Group, list[Row]]:
    """The shipped group plus a copy of its rows at a second unit, where the results mark IO
    irrelevant and IO's edit scores what a no-op edit does there (1.0); (group, the copies)."""
    group = _group()
    second = [dataclasses.replace(r, unit="before-the-name-movers",
                                  relevant={**r.relevant, "IO": False},
                                  values=dict(r.values)) for r in group.rows]
    for r in second:
        r.values["edit_accuracy_IO_k2"] = 1.0
    group.rows = group.rows + second
    return group, second


def test_an_attribute_relevant_at_one_unit_only_stays_out_of_the_others_headlines() -> None:
    """ioi-circuit's case: IO matters after the name movers, not before them. At the unit where
    the results mark IO irrelevant, its (no-op) edit must not enter the mean edit accuracy, the
    coverage headline or the plots; at the other unit it does."""
    group, second = _group_with_io_unused_at_a_second_unit()
    rep = report_tables.build(group)
    assert "IO" in rep.relevant and any(n.startswith("IO is not causally relevant at "
                                                     "before-the-name-movers") for n in
                                        rep.not_relevant)
    control = _table(rep, "control")
    key = f"mean_edit_accuracy_k{report_tables.EDIT_BUDGET}"
    for r in group.rows:
        attrs = ["S"] if r.unit == "before-the-name-movers" else ["IO", "S"]
        want = sum(r.values[f"edit_accuracy_{a}_k2"] for a in attrs) / len(attrs)
        assert control.derived[(r.sae, r.unit)][key] == pytest.approx(want), (r.sae, r.unit)
    interp = _table(rep, "interpretability")
    r = second[0]
    assert interp.derived[(r.sae, r.unit)]["mean_coverage"] == pytest.approx(r.values["coverage_S"])
    edit = [p for p in report_plots.render_all(rep) if p.kind == "edit_accuracy"]
    assert len(edit) == 2
    left = {p.file: " ".join(p.notes) for p in edit}
    assert any("IO" in n for name, n in left.items() if "before-the-name-movers" in name)
    assert not any("IO" in n for name, n in left.items() if "before-the-name-movers" not in name)


def test_cells_of_an_attribute_irrelevant_at_a_unit_read_not_relevant_there_only() -> None:
    """Where the results mark IO irrelevant, IO's cells and reference cells show no number (a
    no-op edit's 1.00 would read as a perfect score); at the other unit they do. The CSV keeps
    every value."""
    from sae_bench.report.text import render_csv

    group, second = _group_with_io_unused_at_a_second_unit()
    rep = report_tables.build(group)
    control = _table(rep, "control")
    col = next(c for c in control.columns if c.name == "edit_accuracy_IO_k2")
    for r in control.rows:
        shown = report_structure.cell(control, r, col)
        if r.unit == "before-the-name-movers":
            assert shown == report_structure.IDLE and control.value(r, col) is None
        else:
            assert shown == f"{r.values['edit_accuracy_IO_k2']:.3f}"
    refs = {(label, unit): cells for label, unit, cells in control.references}
    assert all(cells.get("edit_accuracy_IO_k2", report_structure.IDLE) == report_structure.IDLE
               for (_, unit), cells in refs.items() if unit == "before-the-name-movers")
    rows = list(csv.DictReader(render_csv([rep]).splitlines()))
    idle_rows = [r for r in rows if r["unit"] == "before-the-name-movers"]
    assert idle_rows and all(float(r["edit_accuracy_IO_k2"]) == 1.0 for r in idle_rows)
