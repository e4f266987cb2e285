"""`serve` freezes what start-up built: start-up's garbage is collected first (a frozen cycle
would never be freed), and what is alive goes to the collector's permanent generation."""

from __future__ import annotations

import gc
import weakref

from rolegate.server.heap import freeze_startup_heap


class Node:
    def __init__(self) -> None:
        self.peer: Node | None = None


def is_in_a_generation(item: object) -> bool:
    return any(other is item for generation in range(3)
               for other in gc.get_objects(generation=generation))


def test_startup_garbage_is_collected_and_what_lives_is_frozen():
    garbage = Node()
    garbage.peer = Node()
    garbage.peer.peer = garbage  # a cycle only the collector frees
    freed = weakref.ref(garbage)
    del garbage
    kept = Node()
    try:
        freeze_startup_heap()

        assert freed() is None
        assert not is_in_a_generation(kept)  # in the permanent one, which no collection walks
        gc.collect()
        assert not is_in_a_generation(kept)
    finally:
        gc.unfreeze()
