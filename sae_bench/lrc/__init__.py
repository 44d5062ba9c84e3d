"""Linear relational concepts (LRC, Chanin, Hunter & Camburu, NAACL 2024, arXiv 2311.08968) as
a third supervised dictionary, derived from what the model does downstream of a node rather than
from labels alone.

- `jacobian`: the mean Jacobian of the downstream object with respect to the node (autograd
  through the model from the node on);
- `concepts`: the maths (low-rank pseudo-inverse, pulled-back class-conditional means);
- `dictionary`: the fit at an evaluation context, with the rank chosen on fit prompts;
- `records`, `compare`, `summary`: what the result documents carry and print.
"""
