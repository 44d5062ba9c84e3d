"""ioi-tiny's word-level tokenizer: one token per word, GPT-2-style leading spaces.

A word keeps its leading space (" Mary" is one token, as in GPT-2), and each run of punctuation is
its own token ("," "."). The vocabulary is closed: everything the training corpus can produce, and
`<unk>` for anything else. `<bos>` is prepended by the post-processor (and by TransformerLens), so
role positions shift by one exactly as they do for GPT-2 with `prepend_bos=True`.

The tokenizer lives in one `tokenizer.json` (the `tokenizers` library's format) and is wrapped in a
`PreTrainedTokenizerFast` built in code, so loading it never consults the Hugging Face hub.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

BOS, EOS, PAD, UNK = "<bos>", "<eos>", "<pad>", "<unk>"
SPECIAL_TOKENS = (BOS, EOS, PAD, UNK)  # ids 0..3, in this order
# GPT-2-like pre-tokenization: an optional leading space, then a word or a punctuation run.
# Anything the pattern does not match (stray whitespace) becomes its own piece, i.e. <unk>.
PRETOKENIZE_PATTERN = r" ?[A-Za-z]+| ?[^A-Za-z\s]+"
_PIECE = re.compile(PRETOKENIZE_PATTERN)


def pieces(text: str) -> list[str]:
    """The pre-tokenized pieces of `text` (what becomes one token each if it is in the vocab)."""
    return _PIECE.findall(text)


def build_vocab(words: Iterable[str]) -> dict[str, int]:
    """Token -> id: the special tokens first, then `words` in first-seen order (deterministic)."""
    vocab: dict[str, int] = {}
    for token in (*SPECIAL_TOKENS, *words):
        if token not in vocab:
            if token not in SPECIAL_TOKENS and pieces(token) != [token]:
                raise ValueError(f"{token!r} is not a single pre-tokenized piece")
            vocab[token] = len(vocab)
    return vocab


def build_backend(vocab: dict[str, int]):
    """The `tokenizers.Tokenizer`: WordLevel model, regex split, BOS post-processor, Fuse decoder"""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors

    tok = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(PRETOKENIZE_PATTERN), behavior="isolated")
    # Tokens carry their own spaces, so decoding is plain concatenation.
    tok.decoder = decoders.Fuse()
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, vocab[BOS])]
    )
    tok.add_special_tokens(list(SPECIAL_TOKENS))
    return tok


def wrap(backend, name: str = "ioi-tiny"):
    """A `PreTrainedTokenizerFast` around a `tokenizers.Tokenizer`.

    `add_bos_token=True` matters: without it TransformerLens' `set_tokenizer` re-creates the
    tokenizer with `AutoTokenizer.from_pretrained(name_or_path)`, i.e. asks the hub for it.
    `name_or_path` must be present too (TransformerLens pops it from `init_kwargs`).
    """
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        unk_token=UNK,
        add_bos_token=True,
        name_or_path=name,
        padding_side="right",
        model_max_length=10**6,  # positions are bounded by the model's n_ctx, not the tokenizer
    )


def build_tokenizer(words: Iterable[str], name: str = "ioi-tiny"):
    """A fresh tokenizer whose vocabulary is the special tokens plus `words`."""
    return wrap(build_backend(build_vocab(words)), name)


def save_tokenizer(tokenizer, path: Path) -> None:
    """Write the backend as one `tokenizer.json` (no pickles, no HF config files)."""
    tokenizer.backend_tokenizer.save(str(path))


def load_tokenizer(path, name: str = "ioi-tiny"):
    """Load a `tokenizer.json` written by `save_tokenizer` (offline; raises on a bad file).

    `path` is a `pathlib.Path` or an `importlib.resources` Traversable (read as text, so it also
    works from a zipped package).
    """
    from tokenizers import Tokenizer

    backend = Tokenizer.from_str(path.read_text(encoding="utf-8"))
    missing = [t for t in SPECIAL_TOKENS if backend.token_to_id(t) is None]
    if missing:
        raise ValueError(f"tokenizer file lacks special tokens {missing}")
    return wrap(backend, name)
