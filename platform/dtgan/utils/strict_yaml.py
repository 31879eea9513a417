"""YAML read the strict way: ``yaml.safe_load`` (no Python objects) that refuses a mapping with a key twice.

PyYAML keeps the last of two equal keys silently, so a preset that sets ``optim.lr`` twice would run with
whichever came last; here it is an error naming the line.
"""

from __future__ import annotations

from typing import Any

import yaml


class DuplicateKeyError(yaml.constructor.ConstructorError):
    """A mapping holds the same key twice."""


class _StrictSafeLoader(yaml.SafeLoader):
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise DuplicateKeyError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def safe_load_strict(text: str) -> Any:
    """``yaml.safe_load(text)`` but a key given twice in one mapping raises :class:`DuplicateKeyError`."""
    return yaml.load(text, Loader=_StrictSafeLoader)  # noqa: S506 (a SafeLoader subclass)
