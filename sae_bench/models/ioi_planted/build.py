"""ioi-planted: a transformer whose IOI circuit is set by hand, so its ground truth is exact.

Three attention-only layers (no MLP, no LayerNorm), two heads each, built from named subspaces of
the residual stream and then rotated by a random orthogonal matrix (so no variable is axis-aligned
for an SAE to find for free). The circuit is GPT-2 Small's (Wang et al. 2022) reduced to its
skeleton:

- head 0.0, **duplicate-token head**: at a name that occurred before (S2), attends to the earlier
  occurrence (S1) and writes a "duplicate" flag and S1's *position* (not its token);
  elsewhere it rests on BOS.
- heads 1.0 and 1.1, **S-inhibition heads**: at every position attend to the token carrying the
  duplicate flag (S2); 1.0 moves S1's position (the Pos signal), 1.1 moves the S token.
- heads 2.0 and 2.1, **name movers**: attend to name tokens, except those flagged duplicate (S2)
  and the one the S-inhibition signals point at (S1): 2.0 avoids S1's position and writes 0.6 of
  the answer, 2.1 avoids the S token and writes 0.4; they copy the attended name to the output.

So IO lives in the name movers' outputs, S and Pos in the S-inhibition outputs and the name movers'
queries, Pos alone in the duplicate-token head's output: patching the Pos counterfactual (ABB <->
BAB) into the S-inhibition or duplicate-token outputs makes the name movers suppress IO's position
and copy S, which flips the answer. What it cannot do is ignore names that are in neither role:
a third name in the prompt is attended like IO (see the model card).

Deterministic: one `torch.Generator` seeded with `seed` draws the name codes and the rotations.
"""

from __future__ import annotations

import torch

from sae_bench.tasks.ioi.vocab import NAMES

N_CTX = 64
CODE_DIM = 64  # name codes: 200 near-orthogonal unit vectors
N_LAYERS, N_HEADS, D_HEAD = 3, 2, 130

# Sharpness of each head's attention (score scale) and the output logit scale.
BETA, GAMMA, DELTA, LOGIT_SCALE = 30.0, 30.0, 16.0, 12.0
# Name movers 2.0 and 2.1: how strongly each S-inhibition signal suppresses a key (position,
# token), and the share of the answer each writes. 2.0 reads S1's position (1.0's output), 2.1 the S
# token (1.1's output); 2.0 writes more, so a Pos-counterfactual patch at the S-inhibition outputs
# flips the answer while an S-counterfactual patch only lowers the logit difference (by 2.1's
# half-share: S is causally relevant without flipping, position dominates, as in GPT-2).
NAME_MOVERS = ((1.2, 0.0, 0.6), (0.0, 1.2, 0.4))
# Resting score on BOS for heads with nothing to attend to; between a matching and a non-matching
# name code (the codes' coherence is kept below it).
SINK = 0.6


# Offsets of the residual stream's named subspaces (before the rotation).
NAME = 0  # the token's name code (CODE_DIM)
IS_NAME = NAME + CODE_DIM  # 1 on name tokens
BOS = IS_NAME + 1  # 1 on BOS
POS = BOS + 1  # one-hot position (N_CTX)
DUP = POS + N_CTX  # written by the duplicate-token head: 1 at a repeated name
DUP_POS = DUP + 1  # ... and the position of its earlier occurrence (N_CTX)
INH_POS = DUP_POS + N_CTX  # written by S-inhibition head 1.0: that position (N_CTX)
INH_TOK = INH_POS + N_CTX  # written by S-inhibition head 1.1: the repeated name's code
NAME_OUT = INH_TOK + CODE_DIM  # written by the name movers: the attended name's code
D_MODEL = NAME_OUT + CODE_DIM


def name_codes(gen: torch.Generator, n: int = len(NAMES), dim: int = CODE_DIM) -> torch.Tensor:
    """`n` unit vectors in `dim` dimensions with low coherence: random (max |cosine| about 0.5 for
    200 in 64 dimensions), then spread apart by 200 normalised gradient steps on the sum of
    off-diagonal cosines to the 8th power, which pushes the worst pairs hardest (max |cosine|
    about 0.2 after). Deterministic for a given generator state."""
    codes = torch.randn(n, dim, generator=gen, dtype=torch.float64)
    codes = codes / codes.norm(dim=1, keepdim=True)
    for _ in range(200):
        cos = codes @ codes.T
        cos.fill_diagonal_(0.0)
        grad = cos.pow(7) @ codes  # d/dcodes of sum(cos^8), up to a constant
        codes = codes - 0.05 * grad / grad.norm()
        codes = codes / codes.norm(dim=1, keepdim=True)
    return codes


def orthogonal(dim: int, gen: torch.Generator) -> torch.Tensor:
    """A random orthogonal matrix (QR of a Gaussian with the signs fixed: Haar-distributed)."""
    q, r = torch.linalg.qr(torch.randn(dim, dim, generator=gen, dtype=torch.float64))
    return q * torch.sign(torch.diagonal(r))


def name_token_ids(tokenizer) -> tuple[list[int], list[list[int]]]:
    """(id of " Name" per name: the answer token, every id spelling the name: " Name", "Name")."""
    answers, spellings = [], []
    for name in NAMES:
        ids = [tokenizer.convert_tokens_to_ids(t) for t in (" " + name, name)]
        ids = [i for i in ids if i is not None and i != tokenizer.unk_token_id]
        answers.append(ids[0])
        spellings.append(ids)
    return answers, spellings


def config(d_vocab: int) -> dict:
    """HookedTransformerConfig arguments (a plain dict, as `config.json` would store it)."""
    return dict(model_name="ioi-planted", n_layers=N_LAYERS, d_model=D_MODEL, n_heads=N_HEADS,
                d_head=D_HEAD, d_vocab=d_vocab, n_ctx=N_CTX, attn_only=True,
                normalization_type=None, use_attn_scale=False,
                positional_embedding_type="standard", default_prepend_bos=True,
                init_weights=False)


def circuit_weights(tokenizer, codes: torch.Tensor) -> dict[str, torch.Tensor]:
    """The hand-set weights in the unrotated basis (float64), keyed like a `HookedTransformer`'s
    state dict. Every attention score is a sum of named terms; see the module docstring."""
    d_vocab = len(tokenizer)
    answers, spellings = name_token_ids(tokenizer)
    f64 = torch.float64
    w: dict[str, torch.Tensor] = {
        "embed.W_E": torch.zeros(d_vocab, D_MODEL, dtype=f64),
        "pos_embed.W_pos": torch.zeros(N_CTX, D_MODEL, dtype=f64),
        "unembed.W_U": torch.zeros(D_MODEL, d_vocab, dtype=f64),
        "unembed.b_U": torch.zeros(d_vocab, dtype=f64),
    }
    for n, ids in enumerate(spellings):
        for i in ids:
            w["embed.W_E"][i, NAME:NAME + CODE_DIM] = codes[n]
            w["embed.W_E"][i, IS_NAME] = 1.0
    w["embed.W_E"][tokenizer.bos_token_id, BOS] = 1.0
    w["pos_embed.W_pos"][:, POS:POS + N_CTX] = torch.eye(N_CTX, dtype=f64)
    # Only the " Name" spelling is an answer (the other would tie with it for top-1).
    w["unembed.W_U"][NAME_OUT:NAME_OUT + CODE_DIM, answers] = LOGIT_SCALE * codes.T

    eye_c, eye_p = torch.eye(CODE_DIM, dtype=f64), torch.eye(N_CTX, dtype=f64)
    for layer in range(N_LAYERS):
        q = torch.zeros(N_HEADS, D_MODEL, D_HEAD, dtype=f64)
        k, v = torch.zeros_like(q), torch.zeros_like(q)
        bq = torch.zeros(N_HEADS, D_HEAD, dtype=f64)
        o = torch.zeros(N_HEADS, D_HEAD, D_MODEL, dtype=f64)
        if layer == 0:  # 0.0 duplicate-token head; 0.1 idle
            b = BETA ** 0.5
            q[0, NAME:NAME + CODE_DIM, :CODE_DIM] = b * eye_c  # same name: +beta
            k[0, NAME:NAME + CODE_DIM, :CODE_DIM] = b * eye_c
            q[0, POS:POS + N_CTX, CODE_DIM:CODE_DIM + N_CTX] = b * eye_p  # itself: -beta
            k[0, POS:POS + N_CTX, CODE_DIM:CODE_DIM + N_CTX] = -b * eye_p
            bq[0, CODE_DIM + N_CTX] = b * SINK  # BOS: +beta * SINK
            k[0, BOS, CODE_DIM + N_CTX] = b
            v[0, IS_NAME, 0] = 1.0
            v[0, POS:POS + N_CTX, 1:1 + N_CTX] = eye_p
            o[0, 0, DUP] = 1.0
            o[0, 1:1 + N_CTX, DUP_POS:DUP_POS + N_CTX] = eye_p
        elif layer == 1:  # 1.0 and 1.1: S-inhibition, attend to the duplicate flag
            g = GAMMA ** 0.5
            for h in range(2):
                bq[h, 0], k[h, DUP, 0] = g, g
                bq[h, 1], k[h, BOS, 1] = g * SINK, g
            v[0, DUP_POS:DUP_POS + N_CTX, :N_CTX] = eye_p
            o[0, :N_CTX, INH_POS:INH_POS + N_CTX] = eye_p
            v[1, NAME:NAME + CODE_DIM, :CODE_DIM] = eye_c
            o[1, :CODE_DIM, INH_TOK:INH_TOK + CODE_DIM] = eye_c
        else:  # 2.0 and 2.1: name movers
            d = DELTA ** 0.5
            for h, (w_pos, w_tok, share) in enumerate(NAME_MOVERS):
                bq[h, 0], k[h, IS_NAME, 0], k[h, DUP, 0] = d, d, -d  # names, not duplicates
                q[h, INH_POS:INH_POS + N_CTX, 1:1 + N_CTX] = d * w_pos * eye_p
                k[h, POS:POS + N_CTX, 1:1 + N_CTX] = -d * eye_p
                q[h, INH_TOK:INH_TOK + CODE_DIM, 1 + N_CTX:1 + N_CTX + CODE_DIM] = d * w_tok * eye_c
                k[h, NAME:NAME + CODE_DIM, 1 + N_CTX:1 + N_CTX + CODE_DIM] = -d * eye_c
                v[h, NAME:NAME + CODE_DIM, :CODE_DIM] = share * eye_c
                o[h, :CODE_DIM, NAME_OUT:NAME_OUT + CODE_DIM] = eye_c
        prefix = f"blocks.{layer}.attn."
        w.update({prefix + "W_Q": q, prefix + "W_K": k, prefix + "W_V": v, prefix + "W_O": o,
                  prefix + "b_Q": bq, prefix + "b_K": torch.zeros_like(bq),
                  prefix + "b_V": torch.zeros_like(bq),
                  prefix + "b_O": torch.zeros(D_MODEL, dtype=f64)})
    return w


def rotate(w: dict[str, torch.Tensor], gen: torch.Generator) -> dict[str, torch.Tensor]:
    """The same function in a random basis: the residual stream rotated by one orthogonal matrix,
    each head's query/key space and value space by their own (scores and outputs unchanged)."""
    r = orthogonal(D_MODEL, gen)
    out = dict(w)
    out["embed.W_E"] = w["embed.W_E"] @ r
    out["pos_embed.W_pos"] = w["pos_embed.W_pos"] @ r
    out["unembed.W_U"] = r.T @ w["unembed.W_U"]
    for layer in range(N_LAYERS):
        p = f"blocks.{layer}.attn."
        qk = torch.stack([orthogonal(D_HEAD, gen) for _ in range(N_HEADS)])
        ov = torch.stack([orthogonal(D_HEAD, gen) for _ in range(N_HEADS)])
        for name in ("W_Q", "W_K"):
            out[p + name] = r.T @ w[p + name] @ qk
        for name in ("b_Q", "b_K"):
            out[p + name] = torch.einsum("hd,hde->he", w[p + name], qk)
        out[p + "W_V"] = r.T @ w[p + "W_V"] @ ov
        out[p + "b_V"] = torch.einsum("hd,hde->he", w[p + "b_V"], ov)
        out[p + "W_O"] = ov.transpose(1, 2) @ w[p + "W_O"] @ r
        out[p + "b_O"] = w[p + "b_O"] @ r
    return out


def build(tokenizer, seed: int = 0, rotated: bool = True):
    """The planted model as an eval-mode `HookedTransformer` (float32) with `tokenizer` attached."""
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    gen = torch.Generator().manual_seed(seed)
    weights = circuit_weights(tokenizer, name_codes(gen))
    if rotated:
        weights = rotate(weights, gen)
    model = HookedTransformer(HookedTransformerConfig(**config(len(tokenizer)), device="cpu"),
                              tokenizer=tokenizer, move_to_device=False)
    state = model.state_dict()
    missing = [k for k in state if k not in weights and not k.endswith(("mask", "IGNORE"))]
    if missing:
        raise RuntimeError(f"planted weights lack {missing}")
    model.load_state_dict({k: weights[k].float() if k in weights else state[k] for k in state})
    return model.eval()
