"""The lab: what decisions are made with, kept out of the product.

Bootstrap intervals and paired differences (`stats`), the learned policy's offline fitting (`policyfit`), and
simulated engines on a fake clock with the effort table's replay (`simulate`). Benchmarks and tests import it;
the product (`core`, `modeling`, `runner`, `delivery`, the CLI) never does, which tests/test_layout.py checks.
"""
