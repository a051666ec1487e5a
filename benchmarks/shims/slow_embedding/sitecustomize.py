"""Harness only: `benchmarks/chaos.py ta-slow-embed` puts this folder on the server processes' PYTHONPATH, so that
Python imports it at start-up and the TA's embedding model takes CHAOS_EMBED_LOAD_DELAY_S seconds longer to load,
as on a machine whose disk and cores are busy. Nothing in the tutor imports it; without the variable it does nothing.
"""

import os
import time

_DELAY_S = float(os.environ.get("CHAOS_EMBED_LOAD_DELAY_S", "0") or 0)

if _DELAY_S > 0:
    from inference import retrieval

    _load = retrieval.Embedder._load

    def _slow_load(self: retrieval.Embedder) -> object:
        if not self.loaded:
            time.sleep(_DELAY_S)
        return _load(self)

    retrieval.Embedder._load = _slow_load  # type: ignore[method-assign]
