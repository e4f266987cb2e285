"""`freeze_startup_heap`: what start-up built is moved out of the garbage collector's sight.

A gateway's heap after start-up (modules, the configuration, compiled policy, route table,
key caches: about a million objects) lives as long as the process, yet each full collection
walks all of it: about 100 ms a time on a small machine, every few thousand requests, paid by
whichever requests are waiting then. `gc.freeze()` moves every object tracked so far to the
collector's permanent generation, which it never walks; collections then see only what
requests made. The objects stay alive as they would have anyway (a frozen cycle is never
freed: start-up's garbage is collected first).
"""

from __future__ import annotations

import gc


def freeze_startup_heap() -> None:
    """Collect start-up's garbage, then freeze what is left (once the app is built, before
    serving; in each worker process of `serve --workers N`)."""
    gc.collect()
    gc.freeze()
