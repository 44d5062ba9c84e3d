"""Control baselines (issue 16): reference edits at a cross-section that need no SAE, scored on
the same eval prompts and targets as the SAE edits of the control axis.

- `diffmean`: the supervised difference of means, scaled (scale chosen on fit prompts);
- `steering`: one learned vector per node for the binary edit (Pos);
- `scaling`: one learned scalar per node (activation scaling, Stoehr et al. 2024);
- `scores`: edit accuracy, normalised LD change, KL to the patched run, edit size;
- `run`: all of them for the cross-sections of an evaluation context (cached on disk).
"""
