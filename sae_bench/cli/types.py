"""Option types and the parser class of the CLI: every refused option is one line on stderr,
exit code 2, before any file is read or model loaded."""

from __future__ import annotations

import argparse
import math
import sys
from typing import NoReturn

MAX_SEED = 2**63 - 1  # torch.Generator.manual_seed's signed 64-bit range, for every command


class OneLineParser(argparse.ArgumentParser):
    """argparse prints a usage block before its error; a user of a bad option needs one line
    that says what is wrong and where the fix is (the subcommand's --help)."""

    def error(self, message: str) -> NoReturn:
        print(f"sae-bench: error: {message}; see `{self.prog} --help`.", file=sys.stderr)
        raise SystemExit(2)


def _int(text: str, wanted: str) -> int:
    """`text` as an int, or the one-line refusal naming what to give instead."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number; give {wanted}") from None


def positive_int(text: str) -> int:
    value = _int(text, "one >= 1")
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not positive; give a whole number >= 1")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number; give one >= 0") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative; give a whole number >= 0")
    return value


def seed(text: str) -> int:
    value = _int(text, f"0..{MAX_SEED}")
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"{text} is out of range; give 0..{MAX_SEED}")
    return value


def _float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text} is not finite; give a finite number")
    return value


def positive_float(text: str) -> float:
    value = _float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not positive; give a number > 0")
    return value


def non_negative_float(text: str) -> float:
    value = _float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative; give a number >= 0")
    return value


def device(text: str) -> str:
    """A torch device this build can use (checked before a model is loaded)."""
    import torch

    try:
        dev = torch.device(text)
    except (RuntimeError, ValueError):
        raise argparse.ArgumentTypeError(
            f"unknown device {text!r}; use cpu, cuda or cuda:N") from None
    if dev.type == "cpu":
        return text
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise argparse.ArgumentTypeError(f"{text!r}: this torch build or machine has no "
                                             "CUDA device; use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise argparse.ArgumentTypeError(
                f"{text!r}: only {torch.cuda.device_count()} CUDA device(s); use cuda:0..")
        return text
    if dev.type == "mps" and torch.backends.mps.is_available():
        return text
    raise argparse.ArgumentTypeError(f"device {text!r} is not available here; use --device cpu")
