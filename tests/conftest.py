"""Session-wide test set-up."""

from __future__ import annotations

import os
import tempfile

# bfcl_eval creates result/score folders under BFCL_PROJECT_ROOT at import time (default: its
# site-packages dir). Point it at a throwaway dir before any test imports it.
os.environ.setdefault("BFCL_PROJECT_ROOT", tempfile.mkdtemp(prefix="bfcl_root_"))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
