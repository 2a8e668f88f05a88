"""A live lab: the model built in the kernel, changed step by step, probed."""
