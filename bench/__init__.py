"""nslab's benchmark: `./run bench` (or `python -m bench`). Medians, and ratios measured in one run."""
