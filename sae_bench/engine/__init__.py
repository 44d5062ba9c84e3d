"""Running the model: the evaluation context, activation collection, patching, the fast
intervention runner and its suffix forward, and the on-disk caches."""
