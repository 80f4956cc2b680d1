"""A hardened YAML loader for config files: no aliases (``*name``; a few hundred bytes of
them can expand past a gigabyte), bounded nesting, no duplicate keys, and no YAML 1.1
base-60 numbers (``8:30`` is the text "8:30", not 510). Errors are described in one line
without echoing the document."""

from __future__ import annotations

from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError

MAX_DEPTH = 50


def _name(key: object) -> str:
    text = str(key)
    return text if len(text) <= 40 else text[:37] + "..."


_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"
_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _Loader(yaml.SafeLoader):
    """yaml.SafeLoader for configs: no aliases, bounded depth, unique keys, no base-60."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event: Any = self.peek_event()  # type: ignore[no-untyped-call]
        mark: Any = event.start_mark
        if isinstance(event, yaml.AliasEvent):
            raise ComposerError(
                None, None, "aliases (*name) are not allowed; write the value out", mark
            )
        if self._depth >= MAX_DEPTH:
            raise ComposerError(None, None, f"nested more than {MAX_DEPTH} levels deep", mark)
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def resolve(self, kind: type[yaml.Node], value: Any, implicit: Any) -> str:
        tag: str = super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]
        if tag in (_INT_TAG, _FLOAT_TAG) and ":" in value:
            return _STR_TAG  # YAML 1.1 base-60 (8:30 = 510); YAML 1.2 and people read text
        return tag

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[tuple[str, str]] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != _MERGE_TAG:
                ident = (key_node.tag, key_node.value)
                if ident in seen:
                    raise ConstructorError(
                        None, None, f"duplicate key '{_name(key_node.value)}'", key_node.start_mark
                    )
                seen.add(ident)
        return super().construct_mapping(node, deep)

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        try:
            value: int = super().construct_yaml_int(node)
        except ValueError:  # more than sys.get_int_max_str_digits() digits
            raise ConstructorError(None, None, "number too long", node.start_mark) from None
        return value


_Loader.add_constructor(_INT_TAG, _Loader.construct_yaml_int)


def _yaml_problem(err: yaml.YAMLError, text: str) -> tuple[int | None, str]:
    """(line, one-line description) of a YAML error, without echoing the document."""
    if isinstance(err, yaml.reader.ReaderError):
        line = text.count("\n", 0, err.position) + 1
        return line, f"unacceptable character #x{err.character:04x}"
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None) or str(err)
    context = getattr(err, "context", None)
    if context and not problem.startswith("but "):
        context = None
    message = f"{context}, {problem}" if context else problem
    message = " ".join(message.split())
    if len(message) > 200:
        message = message[:197] + "..."
    return (mark.line + 1 if mark else None), message
