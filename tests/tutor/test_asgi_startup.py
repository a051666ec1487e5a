"""What an ASGI process does before it serves anyone (tutor/asgi.py)."""

from __future__ import annotations

import gc


def test_the_asgi_module_keeps_what_it_loaded_at_start_up_out_of_the_cyclic_collector():
    import tutor.asgi  # noqa: F401  (the import is the start-up)

    # a full collection would otherwise scan Django, the app and the embedding model every time (~260 ms with it)
    assert gc.get_freeze_count() > 10_000
