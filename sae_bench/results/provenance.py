"""Where a result came from: versions, commit, inputs. No timestamps, so that the same inputs and
seed give a byte-identical results file on the same machine and torch thread count (a float32
sum over a whole tensor may differ in its last digits between thread counts; README, "What a
results file depends on"). SAE files are keyed by name, not by the path as typed, so neither
the cwd nor the spelling of `--sae` changes the file."""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path

from pydantic import BaseModel, ConfigDict

import sae_bench

_LIBRARIES = ("torch", "transformer-lens", "transformers", "safetensors", "numpy", "pydantic")


class Provenance(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    package_version: str
    git_commit: str | None
    git_commit_reason: str | None = None
    model: str
    model_fingerprint: str
    task: str
    task_version: str
    seed: int
    n_fit: int
    n_eval: int
    device: str
    dtype: str
    python: str
    libraries: dict[str, str]
    sae_files: dict[str, str] = {}  # path -> sha256
    nodes: list[str] = []  # every node scored (HOOK[:HEAD]@ROLE)


def git_commit() -> tuple[str | None, str | None]:
    """(commit, None) when the package runs from a git checkout, else (None, reason)."""
    here = Path(sae_bench.__file__).resolve().parent.parent
    try:
        out = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=5, check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"git unavailable: {exc.__class__.__name__}"
    if out.returncode != 0:
        return None, "package is not running from a git checkout"
    return out.stdout.strip(), None


def library_versions() -> dict[str, str]:
    versions = {}
    for lib in _LIBRARIES:
        try:
            versions[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            versions[lib] = "not installed"
    return versions


def collect(*, model_name: str, model_fingerprint: str, task, seed: int, n_fit: int, n_eval: int,
            device: str, dtype: str = "float32", sae_files: dict[str, str] | None = None,
            nodes: list[str] | None = None) -> Provenance:
    commit, reason = git_commit()
    return Provenance(
        package_version=sae_bench.__version__,
        git_commit=commit,
        git_commit_reason=reason,
        model=model_name,
        model_fingerprint=model_fingerprint,
        task=task.name,
        task_version=task.version,
        seed=seed,
        n_fit=n_fit,
        n_eval=n_eval,
        device=device,
        dtype=dtype,
        python=platform.python_version(),
        libraries=library_versions(),
        sae_files=sae_files or {},
        nodes=nodes or [],
    )
