"""`sae-bench export --format saebench` against SAEBench's own pydantic models.

SAEBench's import name is also `sae_bench`, so it cannot be installed next to this project: the
test takes the sae-bench wheel (downloaded with `pip download --no-deps` at test time, or from
$SAEBENCH_WHEEL), loads its `evals/base_eval_output.py` under another module name, and builds
the concrete output class the way SAEBench's own evals do (`CoreEvalOutput` in
evals/core/eval_output.py): `BaseEvalOutput[Config, MetricCategories, ResultDetail]` with one
`BaseMetrics` dataclass per category. Skipped, with the reason, when neither the network nor a
local wheel is available; CI downloads it (.ci/run).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from sae_bench.cli.main import main

SAEBENCH_VERSION = "0.6.0"
RESULTS = Path(__file__).parents[1] / "reports" / "ioi-tiny" / "runs" / "topk-k16-task"


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """SAEBench's base_eval_output module, loaded as `saebench_base_eval_output`."""
    folder = tmp_path_factory.mktemp("saebench")
    wheel = os.environ.get("SAEBENCH_WHEEL")
    if not wheel:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
               f"sae-bench=={SAEBENCH_VERSION}", "-d", str(folder)]
        try:
            subprocess.run(cmd, check=True, capture_output=True, timeout=120)
        except (subprocess.SubprocessError, OSError):
            pytest.skip("SAEBench's wheel is unavailable: no network to PyPI and no "
                        "$SAEBENCH_WHEEL (CI downloads it)")
        wheel = str(next(folder.glob("sae_bench-*.whl")))
    with zipfile.ZipFile(wheel) as zf:
        source = zf.read("sae_bench/evals/base_eval_output.py")
    path = folder / "saebench_base_eval_output.py"
    path.write_bytes(source)
    spec = importlib.util.spec_from_file_location("saebench_base_eval_output", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # pydantic resolves the generic's forward references here
    spec.loader.exec_module(module)
    return module


def output_class(base, doc: dict[str, Any]):
    """The concrete SAEBench output class for our eval type, built like SAEBench's own."""
    from pydantic import Field
    from pydantic.dataclasses import dataclass

    def flat(name: str, bases: tuple, names, kind=float | None):
        fields = [(n, kind, dataclasses.field(default=None)) for n in names]
        return dataclass(dataclasses.make_dataclass(name, fields, bases=bases))

    categories = {cat: flat(f"{cat}_metrics", (base.BaseMetrics,), metrics)
                  for cat, metrics in doc["eval_result_metrics"].items()}
    metric_categories = dataclass(dataclasses.make_dataclass(
        "PrincipledMetricCategories", [(cat, cls) for cat, cls in categories.items()],
        bases=(base.BaseMetricCategories,)))
    config = dataclass(dataclasses.make_dataclass(
        "PrincipledEvalConfig", [(k, Any, dataclasses.field(default=None))
                                 for k in doc["eval_config"]], bases=(base.BaseEvalConfig,)))
    detail_names = {k for d in doc["eval_result_details"] for k in d}
    detail = flat("PrincipledNodeDetail", (base.BaseResultDetail,), sorted(detail_names),
                  kind=Any)

    generic = base.BaseEvalOutput[config, metric_categories, detail]
    fields = [("eval_config", config), ("eval_id", str), ("datetime_epoch_millis", int),
              ("eval_result_metrics", metric_categories),
              ("eval_result_details", list[detail], Field(default_factory=list)),
              ("eval_type_id", str, Field(default="principled_ioi"))]
    # Made with make_dataclass (not a class statement) so the annotations are real types, not
    # strings naming this function's locals.
    return dataclass(dataclasses.make_dataclass("PrincipledEvalOutput", fields, bases=(generic,)))


def validate(base, doc: dict[str, Any]) -> None:
    from pydantic import TypeAdapter

    TypeAdapter(output_class(base, doc)).validate_python(doc)


def test_export_validates_against_saebench(base, tmp_path):
    results = RESULTS / "results.json"
    before = results.read_bytes()
    assert main(["export", str(RESULTS), "--format", "saebench", "--out", str(tmp_path)]) == 0
    assert results.read_bytes() == before  # the export never touches results.json
    files = sorted((tmp_path / "principled_ioi").glob("*_eval_results.json"))
    assert len(files) == len(json.loads(before)["units"]) == 1
    doc = json.loads(files[0].read_text())
    validate(base, doc)
    metrics = doc["eval_result_metrics"]
    original = json.loads(before)["units"][0]
    node = original["per_node"][0]
    assert metrics["approximation"]["fvu"] == node["approximation"]["fvu"]["value"]
    assert metrics["approximation"]["fvu_supervised"] == node["approximation"]["fvu"]["supervised"]
    assert metrics["control"]["edit_accuracy_IO_k8"] == \
        original["control"]["edit_accuracy_IO_k8"]["value"]
    assert doc["eval_result_details"][0]["node"] == node["node"]
    assert doc["eval_result_unstructured"]["control_details"] == original["control_details"]
    assert doc["sae_cfg_dict"]["metadata"]["hook_name"] == "blocks.0.hook_resid_post"


def test_results_json_itself_is_not_saebench_shaped(base):
    """The reason for the export: our document fails SAEBench's validation as it is."""
    from pydantic import ValidationError

    raw = json.loads((RESULTS / "results.json").read_text())
    doc = {"eval_config": {}, "eval_result_metrics": {}, "eval_result_details": []}
    with pytest.raises(ValidationError, match="eval_id"):
        validate(base, {**doc, **raw})


def test_nested_metrics_are_refused_by_saebench(base, tmp_path):
    """The schema check has teeth: a metric category holding a dict fails, as SAEBench wants."""
    from pydantic import ValidationError

    assert main(["export", str(RESULTS), "--format", "saebench", "--out", str(tmp_path)]) == 0
    doc = json.loads(next((tmp_path / "principled_ioi").glob("*.json")).read_text())
    cls = output_class(base, doc)
    doc["eval_result_metrics"]["approximation"]["fvu"] = {"value": 0.1}
    from pydantic import TypeAdapter

    with pytest.raises(ValidationError):
        TypeAdapter(cls).validate_python(doc)


def test_export_bad_input_is_one_line(tmp_path, capsys):
    assert main(["export", str(tmp_path / "nope.json"), "--format", "saebench", "--out",
                 str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "result file not found" in err[0] and "check the path" in err[0]
    assert not (tmp_path / "o").exists()
