"""Correspondence between two dictionaries at one node (after Lan et al. 2024, arXiv 2410.06981).

`sae-bench compare A B` pairs the latents of two dictionaries (SAEs, or the supervised attribute
dictionary) by the correlation of their activations over the eval prompts (`matching`), then asks
whether the paired decoder directions share a geometry: direct cosine, SVCCA (`svcca`) and RSA
(`rsa`), each against a seeded permutation null, a random-subset baseline and a random decoder
(`permutation`). `run` orchestrates, `result` is the typed document, `report` renders it.
The maths, with its choices, is in docs/correspondence.md.
"""
