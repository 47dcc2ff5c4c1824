"""Evaluation of recorded model outputs: BFCL with bfcl-eval's own checker, API-Bank (docs/rewards.md).

Submodules import bfcl-eval lazily (`eval.bfcl_import`); importing this package has no side effects.
"""
