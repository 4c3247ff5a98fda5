"""costguard benchmarks: ratios against baselines measured side by side, in one run (`python -m bench`).

Not tests: nothing here asserts. See bench/README.md.
"""
