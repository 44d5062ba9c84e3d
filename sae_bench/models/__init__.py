"""Models and where to read them: the registry (`sae_bench.models.registry.load_model`), nodes
(hook, head, role position), TransformerLens weight processing, and the models the project
ships: `ioi_tiny` and `ioi_circuit` (trained; their weights stay in `sae_bench/assets/`) and
`ioi_planted` (built by hand).

Deliberately empty: `nodes` is imported by tasks and by every later room, and a package
`__init__` runs on each such import. Re-exporting the registry here made importing
`sae_bench.models.nodes` pull in the registry, whose loaders reach the shipped models and, through
their task vocabulary, the task, which imports `nodes` again (tests/test_import_cycles.py).
"""
