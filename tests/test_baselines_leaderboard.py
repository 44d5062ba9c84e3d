"""Issue 16: the leaderboard's control table shows the baselines' edit accuracies as reference
rows beside the SAEs (read from the results' `control_baselines`), and nothing when absent."""

from __future__ import annotations

from pathlib import Path

from sae_bench.baselines.schema import CrossSectionBaselines, EditBaselines, EditScore
from sae_bench.report.leaderboard import write_leaderboard
from sae_bench.results.document import load_result

SHIPPED = Path("reports/ioi-tiny/runs/topk-k4-task/results.json")


def _with_baselines(tmp_path: Path) -> Path:
    doc = load_result(SHIPPED)
    unit = doc.units[0]

    def edit(name: str, acc: float, binary: bool) -> EditBaselines:
        methods = [EditScore(method="diffmean", applicable=True, edit_accuracy=acc, size=2)]
        methods.append(EditScore(method="steering", applicable=binary, edit_accuracy=0.25
                                 if binary else None, reason=None if binary else "name swap"))
        return EditBaselines(edit=name, kind="binary" if binary else "name_swap", target="t",
                             no_intervention_agreement=0.0, causally_relevant=True,
                             methods=methods, scalars=[])

    baselines = CrossSectionBaselines(
        name=unit.name, nodes=unit.nodes, n_train=10, n_eval=10,
        edits=[edit("IO", 0.625, False), edit("Pos", 0.875, True)])
    out = tmp_path / "run" / "results.json"
    out.parent.mkdir()
    out.write_text(doc.model_copy(update={"control_baselines": [baselines]}).to_json())
    return out


def test_leaderboard_shows_baseline_rows(tmp_path: Path) -> None:
    write_leaderboard([_with_baselines(tmp_path)], tmp_path / "lb")
    md = (tmp_path / "lb" / "leaderboard.md").read_text()
    diffmean = next(line for line in md.splitlines()
                    if "DiffMean (scale chosen on fit prompts)" in line)
    assert "0.625" in diffmean  # IO is causally relevant here: its column is shown
    assert not any("steering vector" in line and "0.250" in line for line in md.splitlines()
                   if "IO" in line)


def test_leaderboard_without_baselines_has_no_baseline_rows(tmp_path: Path) -> None:
    # A result written before issue 16 (no control_baselines): the shipped one without them.
    old = tmp_path / "old" / "results.json"
    old.parent.mkdir()
    old.write_text(load_result(SHIPPED).model_copy(update={"control_baselines": []}).to_json())
    write_leaderboard([old], tmp_path / "lb")
    assert "DiffMean" not in (tmp_path / "lb" / "leaderboard.md").read_text()
