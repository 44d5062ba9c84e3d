"""Evaluation axes. The maths of each axis lives in the one module named after it."""
