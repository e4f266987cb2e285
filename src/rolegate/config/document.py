"""A YAML document read with its positions: the data, its duplicate keys, and the line and
column where any path inside it was written, so every problem can point into the file."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from rolegate.config.problem import Loc, Problem

_MERGE_TAG = "tag:yaml.org,2002:merge"
# Keys only a LiteLLM proxy config has at its top level.
LITELLM_KEYS = ("model_list", "litellm_settings", "general_settings", "router_settings")


class YamlDocument:
    """`YamlDocument.parse(text)` -> `.data` (plain Python) and `.position(("policy", 2))`."""

    def __init__(self, root: Node | None, data: Any, duplicates: list[Problem]) -> None:
        self.root = root
        self.data = data
        self.duplicates = duplicates  # one Problem per key given twice in the same mapping

    @classmethod
    def parse(cls, text: str) -> YamlDocument:
        """Raises `yaml.YAMLError` for text that is not one YAML document."""
        loader = yaml.SafeLoader(text)
        try:
            root = loader.get_single_node()
            duplicates = list(_duplicate_keys(root, (), set())) if root is not None else []
            data = loader.construct_document(root) if root is not None else None
        finally:
            loader.dispose()
        return cls(root, data, duplicates)

    def position(self, loc: Sequence[Any]) -> tuple[int, int] | None:
        """The 1-based line and column of the deepest node `loc` reaches (a key itself for its
        last part); parts that name nothing in the file, such as pydantic's union tags, are
        skipped."""
        node = self.root
        if node is None:
            return None
        mark = node.start_mark
        for part in loc:
            child = _child(node, part)
            if child is None:
                continue
            key, node = child
            mark = (key or node).start_mark
        return mark.line + 1, mark.column + 1


def _child(node: Node, part: Any) -> tuple[Node | None, Node] | None:
    if isinstance(node, MappingNode):
        for key, value in node.value:
            if isinstance(key, ScalarNode) and key.value == str(part):
                return key, value
    elif isinstance(node, SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
        return None, node.value[part]
    return None


def _duplicate_keys(node: Node, path: Loc, seen_nodes: set[int]) -> Iterator[Problem]:
    if id(node) in seen_nodes:  # an alias: its node was walked where it was anchored
        return
    seen_nodes.add(id(node))
    if isinstance(node, MappingNode):
        first: dict[str, int] = {}
        for key, value in node.value:
            if isinstance(key, ScalarNode) and key.tag != _MERGE_TAG:
                if key.value in first:
                    yield Problem((*path, key.value),
                                  f"duplicate key (first given on line {first[key.value]}); "
                                  "give each key once",
                                  position=(key.start_mark.line + 1, key.start_mark.column + 1))
                else:
                    first[key.value] = key.start_mark.line + 1
                yield from _duplicate_keys(value, (*path, key.value), seen_nodes)
    elif isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            yield from _duplicate_keys(item, (*path, index), seen_nodes)
