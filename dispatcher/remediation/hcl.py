"""Adopting live values into Terraform code: find an attribute's literal with a real HCL parser
(tree-sitter-hcl) and rewrite only its bytes, so formatting and comments stay as the team wrote them.

What can be adopted is a *literal* the code writes itself:
    name = "value" | 42 | true                 a top-level attribute of the resource block
    tags = { env = "prod" }                    a key of an object literal (tags, labels...): changed,
                                               added (a new line) or removed (its line)
    name absent from the block                 added as a new line before the closing brace
Everything else is not adoptable and says why: a value from a variable, a local, a function or a
module; a nested block or list element; a value the plan masked as sensitive or did not know. Those
findings are reverted instead (the PR carries the plan that re-applies the code).

Edits are byte ranges against the original file, applied from the end, so one pass over the
text however many attributes change (the remediation of 100 resources edits one file once).
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tree_sitter_hcl
from tree_sitter import Language, Node, Parser

SENSITIVE = "(sensitive)"
UNKNOWN = "(known after apply)"
_LANGUAGE = Language(tree_sitter_hcl.language())


class HclError(Exception):
    """A file the parser cannot read: the message names the file and the line."""


class NotAdoptable(Exception):
    """Why a value cannot be written into the code."""


@dataclass(frozen=True)
class Edit:
    start: int
    end: int
    text: bytes


@dataclass
class HclFile:
    path: Path
    source: bytes
    root: Node

    @classmethod
    def parse(cls, path: Path, source: bytes | None = None) -> HclFile:
        data = path.read_bytes() if source is None else source
        tree = Parser(_LANGUAGE).parse(data)
        if tree.root_node.has_error:
            bad = _first_error(tree.root_node)
            line = bad.start_point[0] + 1 if bad is not None else 0
            raise HclError(f"{path.name}: the HCL parser cannot read it (line {line})")
        return cls(path, data, tree.root_node)

    def text(self, node: Node) -> str:
        return self.source[node.start_byte : node.end_byte].decode("utf-8", "replace")

    def resources(self) -> Iterator[tuple[str, str, Node]]:
        """(type, name, block) of each `resource "type" "name" { ... }` at the top level."""
        body = next((c for c in self.root.children if c.type == "body"), None)
        for block in body.children if body is not None else ():
            if block.type != "block":
                continue
            head = block.children
            if not head or self.text(head[0]) != "resource":
                continue
            labels = [_string_value(self, c) for c in head[1:] if c.type in ("string_lit", "identifier")]
            if len(labels) >= 2 and labels[0] is not None and labels[1] is not None:
                yield labels[0], labels[1], block


def _first_error(node: Node) -> Node | None:
    if node.type == "ERROR" or node.is_missing:
        return node
    for child in node.children:
        if child.has_error:
            return _first_error(child) or child
    return None


def parse_root(directory: Path) -> list[HclFile]:
    """Every *.tf file of one root module (not its subdirectories: those are other modules)."""
    return [HclFile.parse(path) for path in sorted(directory.glob("*.tf")) if path.is_file()]


def find_resource(files: Iterable[HclFile], type_: str, name: str) -> tuple[HclFile, Node] | None:
    for hcl in files:
        for found_type, found_name, block in hcl.resources():
            if (found_type, found_name) == (type_, name):
                return hcl, block
    return None


# --- one attribute -----------------------------------------------------------------------------------


def attribute_edit(hcl: HclFile, block: Node, path: str, before: Any, after: Any) -> Edit:
    """The edit that makes `path` of this resource block read `after`; NotAdoptable says why not."""
    for value in (before, after):
        if value == SENSITIVE or _contains(value, SENSITIVE):
            raise NotAdoptable(f"{path} is sensitive: never written into code")
    if after == UNKNOWN or _contains(after, UNKNOWN):
        raise NotAdoptable(f"{path}: the live value is not known")
    head, _, rest = path.partition(".")
    body = _block_body(block)
    attribute = _attribute(hcl, body, head) if body is not None else None
    if not rest:
        if attribute is None:
            if after is None:
                raise NotAdoptable(f"{path} is not in the code and the live value is empty")
            return _insert_line(hcl, block, f"{head} = {hcl_literal(path, after)}")
        literal = _literal(attribute)
        if literal is None:
            raise NotAdoptable(
                f"{path} is set by an expression ({_expression_text(hcl, attribute)}), not a literal"
            )
        if after is None:
            return _remove_line(hcl, attribute)
        return Edit(literal.start_byte, literal.end_byte, hcl_literal(path, after).encode())
    if rest.split(".")[0].isdigit():
        raise NotAdoptable(f"{path} is an element of a list or nested block")
    if attribute is None:
        if body is not None and _nested_block(hcl, body, head):
            raise NotAdoptable(f"{path} is inside a nested block")
        if after is None:
            raise NotAdoptable(f"{path} is not in the code and the live value is empty")
        return _insert_line(hcl, block, f"{head} = {{\n{_key(rest)} = {hcl_literal(path, after)}\n}}")
    obj = _object(attribute)
    if obj is None:
        raise NotAdoptable(
            f"{head} is set by an expression ({_expression_text(hcl, attribute)}), not a literal"
        )
    element = _object_element(hcl, obj, rest)
    if element is None:
        if after is None:
            raise NotAdoptable(f"{path} is not in the code and the live value is empty")
        return _insert_in_object(hcl, obj, f"{_key(rest)} = {hcl_literal(path, after)}")
    value = _element_value(element)
    if value is None:
        expressions = [c for c in element.children if c.type == "expression"]
        shown = hcl.text(expressions[-1]) if expressions else hcl.text(element)
        raise NotAdoptable(f"{path} is set by an expression ({shown[:60]}), not a literal")
    if after is None:
        return _remove_line(hcl, element)
    return Edit(value.start_byte, value.end_byte, hcl_literal(path, after).encode())


def apply_edits(source: bytes, edits: Iterable[Edit]) -> bytes:
    """Apply non-overlapping edits (overlaps are refused: two findings must not fight over one value)."""
    ordered = sorted(edits, key=lambda e: (e.start, e.end))
    for earlier, later in itertools.pairwise(ordered):
        if later.start < earlier.end or (later.start == earlier.start and later.end == earlier.end):
            raise NotAdoptable("two changes touch the same bytes")
    parts, position = [], 0
    for edit in ordered:
        parts += [source[position : edit.start], edit.text]
        position = edit.end
    parts.append(source[position:])
    return b"".join(parts)


def hcl_literal(path: str, value: Any) -> str:
    """A Python value from the plan as an HCL literal; maps and lists are not adopted."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise NotAdoptable(f"{path}: {value} has no HCL literal")
        return repr(value)
    if isinstance(value, str):
        # JSON escapes are HCL's; template sequences must stay text
        return json.dumps(value, ensure_ascii=False).replace("${", "$${").replace("%{", "%%{")
    raise NotAdoptable(
        f"{path}: a {type(value).__name__} value is not adopted (only strings, numbers, bools)"
    )


# --- the tree ----------------------------------------------------------------------------------------


def _contains(value: Any, marker: str) -> bool:
    if isinstance(value, dict):
        return any(_contains(v, marker) for v in value.values())
    if isinstance(value, list):
        return any(_contains(v, marker) for v in value)
    return value == marker


def _block_body(block: Node) -> Node | None:
    return next((c for c in block.children if c.type == "body"), None)


def _attribute(hcl: HclFile, body: Node, name: str) -> Node | None:
    for child in body.children:
        if child.type == "attribute" and child.children and hcl.text(child.children[0]) == name:
            return child
    return None


def _nested_block(hcl: HclFile, body: Node, name: str) -> bool:
    return any(c.type == "block" and c.children and hcl.text(c.children[0]) == name for c in body.children)


def _expression(node: Node) -> Node | None:
    return next((c for c in node.children if c.type == "expression"), None)


def _expression_text(hcl: HclFile, attribute: Node) -> str:
    expression = _expression(attribute)
    text = hcl.text(expression) if expression is not None else "?"
    return text if len(text) <= 60 else text[:57] + "..."


def _literal(attribute: Node) -> Node | None:
    """The literal_value node of `name = <literal>`; None for any other expression."""
    expression = _expression(attribute)
    if expression is None or len(expression.children) != 1 or expression.children[0].type != "literal_value":
        return None
    literal = expression.children[0]
    string = next((c for c in literal.children if c.type == "string_lit"), None)
    if string is not None and any(c.type == "template_interpolation" for c in string.children):
        return None  # "${var.x}-suffix" is an expression too
    return literal


def _object(attribute: Node) -> Node | None:
    expression = _expression(attribute)
    if expression is None or len(expression.children) != 1:
        return None
    collection = expression.children[0]
    if collection.type != "collection_value" or not collection.children:
        return None
    obj = collection.children[0]
    return obj if obj.type == "object" else None


def _object_element(hcl: HclFile, obj: Node, key: str) -> Node | None:
    for element in obj.children:
        if element.type != "object_elem" or not element.children:
            continue
        key_node = element.children[0]
        text = hcl.text(key_node).strip()
        if text == key or _unquote(text) == key:
            return element
    return None


def _element_value(element: Node) -> Node | None:
    expressions = [c for c in element.children if c.type == "expression"]
    if len(expressions) != 2:
        return None
    value = expressions[1]
    if len(value.children) != 1 or value.children[0].type != "literal_value":
        return None
    literal = value.children[0]
    string = next((c for c in literal.children if c.type == "string_lit"), None)
    if string is not None and any(c.type == "template_interpolation" for c in string.children):
        return None
    return literal


def _string_value(hcl: HclFile, node: Node) -> str | None:
    text = hcl.text(node)
    return _unquote(text) if node.type == "string_lit" else text


def _unquote(text: str) -> str | None:
    if len(text) >= 2 and text[0] == text[-1] == '"':
        try:
            value = json.loads(text)
        except ValueError:
            return None
        return value if isinstance(value, str) else None
    return None


def _key(key: str) -> str:
    """An object key as written: a bare identifier when it is one, else quoted."""
    if key and (key[0].isalpha() or key[0] == "_") and all(ch.isalnum() or ch in "_-" for ch in key):
        return key
    return json.dumps(key, ensure_ascii=False)


def _line_start(source: bytes, offset: int) -> int:
    return source.rfind(b"\n", 0, offset) + 1


def _indent_of(source: bytes, offset: int) -> bytes:
    start = _line_start(source, offset)
    line = source[start:offset]
    return line[: len(line) - len(line.lstrip(b" \t"))]


def _remove_line(hcl: HclFile, node: Node) -> Edit:
    """Remove the node's whole line when it stands alone on it (comments after it go too)."""
    source = hcl.source
    start = _line_start(source, node.start_byte)
    end = source.find(b"\n", node.end_byte)
    end = len(source) if end < 0 else end + 1
    if source[start : node.start_byte].strip():
        raise NotAdoptable("the value shares its line with other code")
    return Edit(start, end, b"")


def _insert_line(hcl: HclFile, block: Node, line: str) -> Edit:
    """A new line before the block's closing brace, indented like the block's first attribute."""
    closing = next((c for c in block.children if c.type == "block_end"), None)
    if closing is None:
        raise NotAdoptable("the resource block has no closing brace")
    body = _block_body(block)
    indent = (
        _indent_of(hcl.source, body.children[0].start_byte)
        if body is not None and body.children
        else _indent_of(hcl.source, block.start_byte) + b"  "
    )
    at = _line_start(hcl.source, closing.start_byte)
    if hcl.source[at : closing.start_byte].strip():  # `}` shares a line with code
        at = closing.start_byte
        return Edit(at, at, b"\n" + _indented(line, indent) + b"\n")
    return Edit(at, at, _indented(line, indent) + b"\n")


def _insert_in_object(hcl: HclFile, obj: Node, line: str) -> Edit:
    end = next((c for c in obj.children if c.type == "object_end"), None)
    if end is None:
        raise NotAdoptable("the object has no closing brace")
    elements = [c for c in obj.children if c.type == "object_elem"]
    at = _line_start(hcl.source, end.start_byte)
    if not elements or hcl.source[at : end.start_byte].strip():
        raise NotAdoptable("the object is written on one line; a key is not added to it")
    indent = _indent_of(hcl.source, elements[0].start_byte)
    return Edit(at, at, _indented(line, indent) + b"\n")


def _indented(text: str, indent: bytes) -> bytes:
    lines = text.split("\n")
    out = [indent + lines[0].encode()]
    for line in lines[1:-1]:
        out.append(indent + b"  " + line.encode())
    if len(lines) > 1:
        out.append(indent + lines[-1].encode())
    return b"\n".join(out)
