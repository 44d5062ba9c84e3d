"""Bad input to every command, as an adversarial user would give it: each case must end with exit
code 2 and one stderr line that names the problem and the fix, no traceback, and nothing written
anywhere (not to --out, not to the cache, not to the cwd or HOME).

Cases run in-process through `sae_bench.cli.main`, in a fresh folder with its own cwd, HOME and
cache; most fail before any model is loaded. A sample runs again as real processes at the end.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from helpers import identity_sae
from safetensors.torch import save_file

from sae_bench.cli.main import main
from sae_bench.sae import save_native

HOOK = "blocks.0.hook_resid_post"
REPO = Path(__file__).resolve().parent.parent
SHIPPED_RESULT = REPO / "reports" / "ioi-tiny" / "runs" / "topk-k4-task" / "results.json"
TINY = ["--n-fit", "1000", "--n-eval", "40", "--quiet"]


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[Path], list[str]]  # makes the inputs under the folder; returns argv
    problem: str  # fragments the one error line must contain (case-insensitive)
    fix: str


def tensors(d_in=128, d_sae=256):
    g = torch.Generator().manual_seed(0)
    return {"W_enc": torch.randn(d_in, d_sae, generator=g), "W_dec": torch.randn(d_sae, d_in,
                                                                                generator=g),
            "b_enc": torch.zeros(d_sae), "b_dec": torch.zeros(d_in)}


def st(path: Path, t=None, **meta) -> Path:
    metadata = {"architecture": "relu", "hook_name": HOOK, "position": "END", **meta}
    save_file(tensors() if t is None else t, str(path),
              metadata={k: v for k, v in metadata.items() if v is not None})
    return path


def good(d: Path, name="sae.safetensors") -> Path:
    path = d / name
    save_native(identity_sae(128, HOOK, position="END"), path)
    return path


def run(d: Path, sae: Path | str, *extra: str) -> list[str]:
    return ["run", "--sae", str(sae), "--out", str(d / "out"), "--cache-dir", str(d / "cache"),
            *TINY, *extra]


def with_t(**changes) -> dict:
    t = tensors()
    for k, v in changes.items():
        if v is None:
            del t[k]
        else:
            t[k] = v
    return t


class Evil:
    def __reduce__(self):
        return (os.system, ("echo payload ran > payload.txt",))


def evil_pt(d: Path) -> Path:
    path = d / "evil.pt"
    torch.save({"W_enc": Evil()}, path)
    return path


def random_pt(d: Path) -> Path:
    path = d / "random.pt"
    path.write_bytes(bytes(torch.randint(0, 256, (3000,), generator=torch.Generator()
                                         .manual_seed(3), dtype=torch.uint8).tolist()))
    return path


def huge_view_pt(d: Path) -> Path:
    path = d / "huge.pt"
    torch.save({**tensors(), "W_enc": torch.zeros(1).expand(2**38)}, path)
    return path


def bundle(d: Path, entries, name="b") -> Path:
    folder = d / name
    folder.mkdir()
    (folder / "bundle.json").write_text(json.dumps({"saes": entries}))
    return folder


def folder_with(d: Path, *names: str) -> Path:
    folder = d / "f"
    folder.mkdir()
    for n in names:
        (folder / n).write_text("{}")
    return folder


def file_at(d: Path, name="afile") -> Path:
    (d / name).write_text("I am a file")
    return d / name


def result_copy(d: Path) -> Path:
    target = d / "results.json"
    shutil.copyfile(SHIPPED_RESULT, target)
    return target


def zero_link(d: Path) -> Path:
    link = d / "results.json"
    link.symlink_to("/dev/zero")
    return link


def fifo(d: Path) -> Path:
    path = d / "results.json"
    os.mkfifo(path)
    return path


def golden_with(d: Path, tolerance) -> Path:
    path = d / "golden.json"
    path.write_text(json.dumps({"golden_schema": "1.0", "metrics": {
        "unit/x/approximation/sufficiency": {"value": 1.0, "tolerance": tolerance}}}))
    return path


def train(d: Path, *extra: str, node: str = f"{HOOK}@END") -> list[str]:
    return ["train-sae", "--arch", "relu", "--l1", "1", "--node", node, "--steps", "2",
            "--n-fit", "300", "--quiet", "--out", str(d / "t.safetensors"), *extra]


def written(path: Path, data: bytes | str) -> Path:
    if isinstance(data, str):
        path.write_text(data)
    else:
        path.write_bytes(data)
    return path


def truncated(d: Path) -> Path:
    path = st(d / "t.safetensors")
    return written(path, path.read_bytes()[:200])


CASES = [
    # ---- run: SAE files --------------------------------------------------------------------
    Case("run/missing-file", lambda d: run(d, d / "nope.safetensors"), "not found",
         "check the path"),
    Case("run/empty-file", lambda d: run(d, written(d / "e.safetensors", b"")), "empty",
         "re-save"),
    Case("run/truncated", lambda d: run(d, truncated(d)), "truncated", "re-save"),
    Case("run/random-bytes-pt", lambda d: run(d, random_pt(d)), "corrupt", "re-save"),
    Case("run/pickle-with-code", lambda d: run(d, evil_pt(d)), "pickled code", "safetensors"),
    Case("run/pickle-protocol-5", lambda d: run(d, (lambda p: pickle.dump(
        {"W_enc": Evil()}, p.open("wb"), protocol=5) or p)(d / "evil5.pt")), "pickled code",
        "re-save"),
    Case("run/stride0-view-1TiB", lambda d: run(d, huge_view_pt(d)), "view", "contiguous"),
    Case("run/missing-tensor", lambda d: run(d, st(d / "s.safetensors", with_t(b_dec=None))),
         "missing tensor", "needs"),
    Case("run/wrong-shape", lambda d: run(d, st(d / "s.safetensors",
                                                with_t(b_enc=torch.zeros(7)))),
         "shape [7]", "re-export"),
    Case("run/transposed", lambda d: run(d, st(d / "s.safetensors", with_t(
        W_dec=torch.zeros(128, 256)))), "transposed", "re-export"),
    Case("run/nan", lambda d: run(d, st(d / "s.safetensors", with_t(
        W_enc=torch.full((128, 256), float("nan"))))), "NaN", "re-train"),
    Case("run/float8", lambda d: run(d, st(d / "s.safetensors", {k: v.to(torch.float8_e4m3fn)
                                                               for k, v in tensors().items()})),
         "float8", "re-save it as float32"),
    Case("run/int-weights", lambda d: run(d, st(d / "s.safetensors", {
        k: v.to(torch.int32) for k, v in tensors().items()})), "int32", "re-save"),
    Case("run/unknown-architecture", lambda d: run(d, st(d / "s.safetensors",
                                                         architecture="reluu")),
         "unknown architecture", "did you mean 'relu'"),
    Case("run/no-architecture", lambda d: run(d, st(d / "s.safetensors", architecture=None)),
         "no 'architecture'", "add architecture"),
    Case("run/topk-without-k", lambda d: run(d, st(d / "s.safetensors", architecture="topk")),
         "needs k", "add 'k'"),
    Case("run/k-not-a-number", lambda d: run(d, st(d / "s.safetensors", architecture="topk",
                                                   k="many")), "k='many'", "fix"),
    Case("run/k-too-large", lambda d: run(d, st(d / "s.safetensors", architecture="topk",
                                                k="999")), "k=999", "fix k"),
    Case("run/input-scale-text", lambda d: run(d, st(d / "s.safetensors", input_scale="abc")),
         "input_scale='abc'", "fix"),
    Case("run/metadata-bad-json", lambda d: run(d, st(d / "s.safetensors", metadata="{oops")),
         "not valid JSON", "fix or remove"),
    Case("run/apply-b-dec-maybe", lambda d: run(d, st(d / "s.safetensors",
                                                      apply_b_dec_to_input="maybe")),
         "must be true or false", "fix"),
    Case("run/head-on-resid-hook", lambda d: run(d, st(d / "s.safetensors", head="1")),
         "no head axis", "remove the head"),
    Case("run/bad-position", lambda d: run(d, st(d / "s.safetensors", position="E N D")),
         "role name", "fix it"),
    Case("run/bad-hook-name", lambda d: run(d, st(d / "s.safetensors", hook_name="blocks 0")),
         "not a TransformerLens hook name", "--hook"),
    Case("run/no-hook", lambda d: run(d, st(d / "s.safetensors", hook_name=None)),
         "does not say which hook", "pass --hook"),
    Case("run/unknown-hook", lambda d: run(d, st(d / "s.safetensors",
                                                 hook_name="blocks.0.hook_resid_postt")),
         "unknown hook", "did you mean"),
    Case("run/pattern-hook", lambda d: run(d, st(d / "s.safetensors",
                                                 hook_name="blocks.0.attn.hook_pattern")),
         "does not hold one vector per token", "sae-bench nodes"),
    Case("run/ln-scale-hook", lambda d: run(d, st(d / "s.safetensors",
                                                  hook_name="ln_final.hook_scale")),
         "does not hold one vector per token", "use a residual"),
    Case("run/width-mismatch", lambda d: run(d, st(d / "s.safetensors", tensors(d_in=64))),
         "d_in=64", "use an SAE trained on this hook"),
    Case("run/unknown-role", lambda d: run(d, st(d / "s.safetensors", position="FOO")),
         "unknown position 'FOO'", "has roles"),
    Case("run/unknown-suffix", lambda d: run(d, file_at(d, "sae.txt")), "unrecognised SAE file",
         "expected .safetensors"),
    Case("run/empty-folder", lambda d: run(d, (d / "empty").mkdir() or d / "empty"),
         "unrecognised SAE folder", "expected one of"),
    Case("run/cfg-without-weights", lambda d: run(d, folder_with(d, "cfg.json")),
         "weights file is missing", "re-download"),
    # ---- run: bundles --------------------------------------------------------------------------
    Case("run/bundle-lists-itself", lambda d: run(d, bundle(d, [
        {"node": f"{HOOK}@END", "path": "bundle.json"}])), "bundles cannot be nested",
        "list its SAE files"),
    Case("run/bundle-lists-its-folder", lambda d: run(d, bundle(d, [
        {"node": f"{HOOK}@END", "path": "."}])), "bundles cannot be nested",
        "list its SAE files"),
    Case("run/bundle-missing-entry", lambda d: run(d, bundle(d, [
        {"node": f"{HOOK}@END", "path": "nope.safetensors"}])), "not found",
        "relative to the manifest"),
    Case("run/bundle-empty", lambda d: run(d, bundle(d, [])), "non-empty list", "each"),
    Case("run/bundle-bad-json", lambda d: run(d, written(
        (d / "b").mkdir() or d / "b" / "bundle.json", "{nope")), "not valid JSON", "fix"),
    Case("run/bundle-node-twice", lambda d: run(d, (lambda p: bundle(d, [
        {"node": f"{HOOK}@END", "path": str(p)}] * 2))(good(d))), "listed twice",
        "one SAE"),
    Case("run/bundle-hook-mismatch", lambda d: run(d, (lambda p: bundle(d, [
        {"node": "blocks.1.hook_resid_post@END", "path": str(p)}]))(good(d))),
        "the manifest node uses", "fix whichever"),
    Case("run/bundle-with-hook-override", lambda d: run(d, (lambda p: bundle(d, [
        {"node": f"{HOOK}@END", "path": str(p)}]))(good(d)), "--hook", HOOK),
        "cannot be overridden for a bundle", "each entry's node"),
    # ---- run: options and outputs ------------------------------------------------------------
    Case("run/n-eval-0", lambda d: run(good(d).parent, d / "sae.safetensors", "--n-eval", "0"),
         "--n-eval: 0 is not positive", "--help"),
    Case("run/n-fit-negative", lambda d: run(good(d).parent, d / "sae.safetensors", "--n-fit",
                                             "-5"), "--n-fit", "give a whole number >= 1"),
    Case("run/batch-size-0", lambda d: run(good(d).parent, d / "sae.safetensors",
                                           "--batch-size", "0"), "--batch-size", ">= 1"),
    Case("run/seed-2**70", lambda d: run(good(d).parent, d / "sae.safetensors", "--seed",
                                         str(2**70)), "out of range", "give 0.."),
    Case("run/seed-text", lambda d: run(good(d).parent, d / "sae.safetensors", "--seed", "x"),
         "not a whole number", "give 0.."),
    Case("run/device-cuda-on-cpu", lambda d: run(good(d).parent, d / "sae.safetensors",
                                                 "--device", "cuda"), "no CUDA device",
         "--device cpu"),
    Case("run/device-unknown", lambda d: run(good(d).parent, d / "sae.safetensors",
                                             "--device", "tpu9"), "unknown device",
         "use cpu"),
    Case("run/input-scale-0", lambda d: run(good(d).parent, d / "sae.safetensors",
                                            "--input-scale", "0"), "not positive", "> 0"),
    Case("run/input-scale-nan", lambda d: run(good(d).parent, d / "sae.safetensors",
                                              "--input-scale", "nan"), "not finite",
         "finite number"),
    Case("run/out-under-a-file", lambda d: ["run", "--sae", str(good(d)), "--out",
                                            str(file_at(d) / "sub"), *TINY],
         "is a file, not a folder", "choose a path"),
    Case("run/out-in-proc", lambda d: ["run", "--sae", str(good(d)), "--out", "/proc/x",
                                       "--cache-dir", str(d / "cache"), *TINY],
         "does not accept new files", "writable folder"),
    Case("run/out-is-a-file", lambda d: ["run", "--sae", str(good(d)), "--out",
                                         str(file_at(d)), *TINY], "is a file, not a folder",
         "give a folder path"),
    Case("run/cache-dir-is-a-file", lambda d: ["run", "--sae", str(good(d)), "--out",
                                               str(d / "out"), "--cache-dir", str(file_at(d)),
                                               *TINY], "--cache-dir", "give a folder path"),
    Case("run/several-out-is-a-file", lambda d: ["run", "--sae", str(good(d)), "--sae",
                                                 str(good(d, "b.safetensors")), "--out",
                                                 str(file_at(d)), *TINY], "is a file",
         "give a directory"),
    Case("run/several-same-name", lambda d: ["run", "--sae", str(good(d)), "--sae",
                                             str(good((d / "x").mkdir() or d / "x")), "--out",
                                             str(d / "runs"), *TINY], "two SAEs would write",
         "rename one"),
    Case("run/results-link-to-dev-zero", lambda d: (
        (d / "out").mkdir(), zero_link(d / "out"),
        run(d, good(d), "--skip-completed"))[-1], "not a regular file", "regular file"),
    Case("run/unknown-task", lambda d: run(d, good(d), "--task", "iol"), "unknown task 'iol'",
         "did you mean 'ioi'"),
    Case("run/unknown-model", lambda d: run(d, good(d), "--model", "ioi-tin"),
         "unknown model 'ioi-tin'", "did you mean 'ioi-tiny'"),
    Case("run/missing-sae-option", lambda d: ["run", "--out", str(d / "out")],
         "required: --sae", "--help"),
    # ---- reference ----------------------------------------------------------------------------
    Case("reference/out-is-a-folder", lambda d: ["reference", "--out", str(d), *TINY],
         "is a folder", "ref.json"),
    Case("reference/out-under-a-file", lambda d: ["reference", "--out", str(
        file_at(d) / "sub" / "ref.json"), *TINY], "is a file, not a folder", "choose a path"),
    Case("reference/unknown-cross-section", lambda d: [
        "reference", "--out", str(d / "ref.json"), "--cross-section", "bnm_otu",
        "--cache-dir", str(d / "cache"), *TINY], "unknown cross-section", "did you mean"),
    Case("reference/n-fit-0", lambda d: ["reference", "--out", str(d / "r.json"), "--n-fit",
                                         "0"], "--n-fit: 0 is not positive", ">= 1"),
    Case("reference/cache-dir-is-a-file", lambda d: [
        "reference", "--out", str(d / "r.json"), "--cache-dir", str(file_at(d)), *TINY],
        "--cache-dir", "give a folder path"),
    # ---- train-sae ----------------------------------------------------------------------------
    Case("train/out-pt", lambda d: train(d)[:-2] + ["--out", str(d / "x.pt")],
         ".safetensors file", "ending in .safetensors"),
    Case("train/out-under-a-file", lambda d: train(d)[:-2] + [
        "--out", str(file_at(d) / "t.safetensors")], "is a file, not a folder", "choose a path"),
    Case("train/node-and-cross-section", lambda d: train(d, "--cross-section", "resid_l0_end"),
         "exactly one of", "--node"),
    Case("train/topk-without-k", lambda d: ["train-sae", "--arch", "topk", "--node",
                                            f"{HOOK}@END", "--out", str(d / "t.safetensors")],
         "needs --k", "active latents"),
    Case("train/relu-without-l1", lambda d: ["train-sae", "--arch", "relu", "--node",
                                             f"{HOOK}@END", "--out", str(d / "t.safetensors")],
         "needs --l1", "sparsity"),
    Case("train/seed-2**70", lambda d: train(d, "--seed", str(2**70)), "out of range",
         "give 0.."),
    Case("train/k-above-d-sae", lambda d: ["train-sae", "--arch", "topk", "--k", "64",
                                           "--d-sae", "32", "--node", f"{HOOK}@END", "--out",
                                           str(d / "t.safetensors")], "more than --d-sae",
         "--k <= 32"),
    Case("train/bad-node-spec", lambda d: train(d, node="resid@@END"), "cannot parse node",
         "HOOK[:HEAD]@ROLE"),
    Case("train/head-on-resid-node", lambda d: train(d, node=f"{HOOK}:1@END"),
         "has no head axis", "heads exist only"),
    Case("train/pattern-node", lambda d: train(d, node="blocks.0.attn.hook_pattern@END"),
         "does not hold one vector per token", "use a residual"),
    Case("train/unknown-role", lambda d: train(d, node=f"{HOOK}@NOPE"), "unknown position",
         "use one of the roles"),
    Case("train/steps-0", lambda d: train(d, "--steps", "0"), "--steps", ">= 1"),
    Case("train/lr-negative", lambda d: train(d, "--lr", "-1"), "--lr", "> 0"),
    Case("train/unknown-cross-section", lambda d: ["train-sae", "--arch", "relu", "--l1", "1",
                                                   "--cross-section", "nope", "--out",
                                                   str(d / "b")], "unknown cross-section",
         "known cross-sections"),
    Case("train/unknown-arch", lambda d: ["train-sae", "--arch", "reluu", "--out",
                                          str(d / "t.safetensors")], "invalid choice",
         "--help"),
    Case("train/saelens-under-a-file", lambda d: train(d, "--saelens", str(file_at(d) / "s")),
         "--saelens", "choose a path"),
    # ---- leaderboard --------------------------------------------------------------------------
    Case("leaderboard/out-is-a-file", lambda d: ["leaderboard", str(result_copy(d)), "--out",
                                                 str(file_at(d))], "is a file, not a folder",
         "give a folder path"),
    Case("leaderboard/link-to-dev-zero", lambda d: ["leaderboard", str(zero_link(d)), "--out",
                                                    str(d / "lb")], "not a regular file",
         "regular file"),
    Case("leaderboard/fifo", lambda d: ["leaderboard", str(fifo(d)), "--out", str(d / "lb")],
         "not a regular file", "regular file"),
    Case("leaderboard/missing", lambda d: ["leaderboard", str(d / "nope.json"), "--out",
                                           str(d / "lb")], "not found", "check the path"),
    Case("leaderboard/not-json", lambda d: ["leaderboard", str(file_at(d, "r.json")), "--out",
                                            str(d / "lb")], "not valid JSON", "fix or re-create"),
    Case("leaderboard/other-schema", lambda d: ["leaderboard", str(
        (d / "r.json").write_text('{"schema_version": "0.1"}') and d / "r.json"), "--out",
        str(d / "lb")], "not a schema", "re-run"),
    Case("leaderboard/folder-without-results", lambda d: [
        "leaderboard", str((d / "run").mkdir() or d / "run"), "--out", str(d / "lb")],
        "not found", "check the path"),
    # ---- golden -------------------------------------------------------------------------------
    Case("golden/write-to-a-folder", lambda d: ["golden", str(result_copy(d)), "--write",
                                                str(d)], "is a folder", "golden.json"),
    Case("golden/write-under-a-file", lambda d: ["golden", str(result_copy(d)), "--write",
                                                 str(file_at(d) / "g.json")],
         "is a file, not a folder", "choose a path"),
    Case("golden/string-tolerance", lambda d: ["golden", str(result_copy(d)), "--check",
                                               str(golden_with(d, "1e-4"))],
         "not a schema 1.0 golden file", "--write FILE"),
    Case("golden/missing-check-file", lambda d: ["golden", str(result_copy(d)), "--check",
                                                 str(d / "nope.json")], "not found",
         "check the path"),
    Case("golden/result-link-to-dev-zero", lambda d: ["golden", str(zero_link(d)), "--check",
                                                      str(golden_with(d, 1e-4))],
         "not a regular file", "regular file"),
    Case("golden/both-modes", lambda d: ["golden", str(result_copy(d)), "--check", "a",
                                         "--write", "b"], "not allowed with", "--help"),
    # ---- nodes / scan -------------------------------------------------------------------------
    Case("nodes/unknown-model", lambda d: ["nodes", "--model", "gpt3"], "unknown model 'gpt3'",
         "known models"),
    Case("nodes/unknown-task", lambda d: ["nodes", "--task", "ioj"], "unknown task 'ioj'",
         "did you mean 'ioi'"),
    Case("scan/n-0", lambda d: ["scan", "--n", "0"], "--n: 0 is not positive", ">= 1"),
    Case("scan/min-effect-nan", lambda d: ["scan", "--min-effect", "nan"], "not finite",
         "finite number"),
    Case("scan/device-unknown", lambda d: ["scan", "--device", "quantum"], "unknown device",
         "use cpu"),
    Case("unknown-command", lambda d: ["evaluate"], "invalid choice", "--help"),
]
# Needs the model and the fit prompts (fails on too few fit prompts after the dictionaries
# were fitted): the case that used to leave cache entries behind.
SLOW = [Case("run/too-few-fit-prompts", lambda d: run(d, good(d))[:-5] + [
    "--n-fit", "400", "--n-eval", "40", "--quiet"], "never occurred in the fit prompts",
    "use more fit prompts")]


def snapshot(root: Path) -> dict[str, bytes | str]:
    """Every entry under root (FIFOs and links by kind, files by content)."""
    out: dict[str, bytes | str] = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            out[rel] = f"link:{os.readlink(path)}"
        elif path.is_dir():
            out[rel] = "dir"
        elif path.is_fifo():
            out[rel] = "fifo"
        else:
            out[rel] = path.read_bytes()
    return out


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """A fresh cwd, HOME and default cache for one case."""
    work = tmp_path / "case"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("HOME", str(tmp_path / "case" / "home"))
    monkeypatch.delenv("SAE_BENCH_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    # matplotlib writes its font cache on first import (the leaderboard imports it): the
    # library's cache, not an output of ours, so it goes outside the watched folder.
    monkeypatch.setenv("MPLCONFIGDIR", str(tmp_path / "mpl"))
    return work


def check_case(case: Case, work: Path, capsys) -> None:
    argv = case.build(work)
    before = snapshot(work)
    code = main(argv)
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 2, (case.name, code, captured.err)
    assert len(lines) == 1 and lines[0].startswith("sae-bench: error: "), (case.name,
                                                                           captured.err)
    line = lines[0].lower()
    assert case.problem.lower() in line, (case.name, "problem", lines[0])
    assert case.fix.lower() in line, (case.name, "fix", lines[0])
    assert "traceback" not in captured.err.lower() and captured.out == ""
    assert snapshot(work) == before, f"{case.name} wrote something"
    assert not (work / "payload.txt").exists()


def test_at_least_sixty_kinds_across_every_command():
    names = [c.name for c in CASES + SLOW]
    assert len(set(names)) == len(names) >= 60
    commands = {n.split("/")[0] for n in names}
    assert {"run", "reference", "train", "leaderboard", "golden", "nodes", "scan"} <= commands


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_bad_input(case, sandbox, capsys):
    check_case(case, sandbox, capsys)


@pytest.mark.parametrize("case", SLOW, ids=lambda c: c.name)
def test_bad_input_found_during_evaluation_leaves_no_cache(case, sandbox, capsys):
    check_case(case, sandbox, capsys)


REAL_PROCESS_SAMPLE = ["run/pickle-with-code", "run/stride0-view-1TiB", "run/bundle-lists-itself",
                       "run/n-eval-0", "leaderboard/fifo", "golden/string-tolerance",
                       "train/out-pt"]


def test_real_processes_print_one_line(tmp_path):
    """A sample through real `python -m sae_bench.cli` processes: no warning or traceback on
    stderr, exit code 2, nothing written, the pickle payload never runs."""
    by_name = {c.name: c for c in CASES}
    for name in REAL_PROCESS_SAMPLE:
        case = by_name[name]
        work = tmp_path / name.replace("/", "_")
        work.mkdir()
        argv = case.build(work)
        before = snapshot(work)
        # matplotlib keeps its font cache under HOME (or MPLCONFIGDIR) on first import; that is
        # the library's cache, not an output of ours, so it goes outside the watched folder.
        env = {**os.environ, "HOME": str(work / "home"), "MPLCONFIGDIR": str(tmp_path / "mpl")}
        env.pop("SAE_BENCH_CACHE", None)
        proc = subprocess.run([sys.executable, "-m", "sae_bench.cli", *argv], cwd=work, env=env,
                              capture_output=True, text=True, timeout=300)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2, (name, proc.stderr)
        assert len(lines) == 1 and lines[0].startswith("sae-bench: error: "), (name, proc.stderr)
        assert case.problem.lower() in lines[0].lower() and case.fix.lower() in lines[0].lower()
        assert snapshot(work) == before, f"{name} wrote something"


def test_random_bytes_in_a_pt_are_corrupt_not_code(tmp_path):
    """The weights-only unpickler refuses junk and code with one message; 35 of 40 random files
    used to be reported as pickled code."""
    from sae_bench.errors import UserError
    from sae_bench.sae.files import read_torch

    g = torch.Generator().manual_seed(0)
    messages = []
    for i in range(40):
        path = written(tmp_path / f"r{i}.pt",
                       bytes(torch.randint(0, 256, (3000,), generator=g).tolist()))
        with pytest.raises(UserError) as err:
            read_torch(path)
        messages.append(str(err.value))
    assert all("corrupt" in m and "pickled code" not in m for m in messages)
    with pytest.raises(UserError, match="pickled code"):
        read_torch(evil_pt(tmp_path))


def test_a_node_built_directly_is_checked_like_a_parsed_one():
    """evaluate builds Node(...) directly, which skips Node.parse; validate_hook must still
    refuse a head on a hook without a head axis (it used to crash in the suffix forward)."""
    from sae_bench.errors import UserError
    from sae_bench.models.nodes import Node, node_width, validate_hook
    from sae_bench.models.registry import load_model

    model = load_model("ioi-tiny")
    with pytest.raises(UserError, match="has no head axis"):
        validate_hook(model, Node(HOOK, "END", head=1))
    for hook in ("blocks.0.attn.hook_pattern", "blocks.0.attn.hook_attn_scores",
                 "ln_final.hook_scale", "blocks.1.ln1.hook_scale"):
        with pytest.raises(UserError, match="does not hold one vector per token"):
            node_width(model, Node(hook, "END"))
    assert node_width(model, Node("ln_final.hook_normalized", "END")) == model.cfg.d_model
    assert node_width(model, Node("blocks.0.mlp.hook_post", "END")) == model.cfg.d_mlp
