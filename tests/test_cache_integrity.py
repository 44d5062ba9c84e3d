"""The cache verifies every entry against the sha256 stored in it: a flipped bit in any kind of
entry (fit activations, mean dictionary, least-squares dictionary) is reported in one stderr line
and rebuilt, and the results equal those of a clean cache."""

from __future__ import annotations

import json
import struct

import torch
from helpers import identity_sae

from sae_bench.cli.main import main
from sae_bench.engine.cache import CACHE_FORMAT, HASH_KEY, DictionaryCache
from sae_bench.sae import save_native

HOOK = "blocks.0.hook_resid_post"
TINY = ["--model", "ioi-tiny", "--n-fit", "1000", "--n-eval", "40", "--quiet",
        "--no-control-baselines"]


def entries(cache):
    """{kind: path} of the three entries a one-node run leaves."""
    found = {"activations": next((cache / "activations").glob("*.safetensors"))}
    for path in (cache / "dictionaries").glob("*.safetensors"):
        length = struct.unpack("<Q", path.read_bytes()[:8])[0]
        method = json.loads(path.read_bytes()[8:8 + length])["__metadata__"]["method"]
        found[f"dictionary-{method}"] = path
    assert set(found) == {"activations", "dictionary-mean", "dictionary-lstsq"}
    return found


def flip(path, where: str) -> None:
    data = bytearray(path.read_bytes())
    header_end = 8 + struct.unpack("<Q", bytes(data[:8]))[0]
    if where == "data":
        i = header_end + (len(data) - header_end) // 2
    else:  # inside the stored metadata value of "node" (still valid JSON, a changed value)
        i = data.index(b'"node":"') + len(b'"node":"') + 3
    data[i] ^= 0x01
    path.write_bytes(bytes(data))


def test_one_flipped_bit_in_each_kind_of_entry_is_detected_and_rebuilt(tmp_path, capsys):
    sae = tmp_path / "sae.safetensors"
    save_native(identity_sae(128, HOOK, position="END"), sae)
    cache = tmp_path / "cache"

    def run(out):
        code = main(["run", "--sae", str(sae), "--out", str(tmp_path / out), "--cache-dir",
                     str(cache), *TINY])
        assert code == 0
        return (tmp_path / out / "results.json").read_bytes(), capsys.readouterr().err

    clean, _ = run("clean")
    pristine = {kind: path.read_bytes() for kind, path in entries(cache).items()}
    for where in ("data", "header"):
        for path in entries(cache).values():
            flip(path, where)
        again, err = run(f"flipped-{where}")
        warnings = [line for line in err.splitlines() if "failed its integrity check" in line]
        assert len(warnings) == 3, err
        assert again == clean
        # Rebuilt entries are byte-identical to the originals (canonical headers).
        assert {kind: path.read_bytes() for kind, path in entries(cache).items()} == pristine


def test_wrong_width_missing_hash_and_missing_tensor_are_rebuilt(tmp_path):
    lines: list[str] = []
    cache = DictionaryCache(tmp_path, warn=lines.append)
    key = cache.key(node="n")
    cache.put_activations(key, torch.ones(10, 64))
    assert cache.get_activations(key, shape=(10, 128)) is None
    assert "holds shape [10, 64], expected [10, 128]" in lines[-1]
    assert torch.equal(cache.get_activations(key, shape=(10, 64)), torch.ones(10, 64))

    # An entry without a content hash (as written before CACHE_FORMAT 3) is never trusted.
    from safetensors.torch import save_file

    path = tmp_path / "activations" / f"{key}.safetensors"
    save_file({"activations": torch.ones(10, 64)}, str(path))
    assert cache.get_activations(key) is None and "no content hash" in lines[-1]
    # A valid hash over an entry that lacks the tensor: not trusted either.
    cache.put_activations(key, torch.ones(10, 64))
    from sae_bench.engine.cache import content_hash

    meta = {"x": "1"}
    save_file({"other": torch.ones(2)}, str(path),
              metadata={**meta, HASH_KEY: content_hash({"other": torch.ones(2)}, meta)})
    assert cache.get_activations(key) is None and "no tensor" in lines[-1]
    assert CACHE_FORMAT >= 3


def test_staged_entries_are_written_only_on_commit(tmp_path):
    cache = DictionaryCache(tmp_path, write_on_commit=True)
    key = cache.key(node="n")
    cache.put_activations(key, torch.ones(3, 4))
    assert torch.equal(cache.get_activations(key), torch.ones(3, 4))  # visible in-process
    assert not (tmp_path / "activations").exists()  # but nothing on disk yet
    cache.commit()
    assert torch.equal(DictionaryCache(tmp_path).get_activations(key), torch.ones(3, 4))
