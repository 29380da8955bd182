"""Adopting live values into Terraform code: find an attribute's literal with a real HCL parser
(tree-sitter-hcl) and rewrite only its bytes, so formatting and comments stay as the team wrote them.

What can be adopted is a *literal* the code writes itself:
    name = "value" | 42 | true                 a top-level attribute of the block
    tags = { env = "prod" }                    a key of an object literal (tags, labels...): changed in
                                               place, added (a new line) or removed (its line)
    cidr_blocks = ["10.0.0.0/16"]              elements of a list of literals: changed in place,
                                               removed (their line, or themselves and a comma), appended
    ingress { from_port = 22 ... }             any of the above inside a nested block, when the change
                                               maps onto exactly one block (the one holding the applied
                                               values the finding names); a block removed outside
                                               Terraform loses its lines
    name absent from the block                 added as a new line before the closing brace
Everything else is not adoptable and says why: a value from a variable, a local, a function, a
for-expression or a module; a dynamic block; a block added outside Terraform; a change that fits
several blocks; a value the plan masked as sensitive or did not know. Those findings are reverted
instead (the pull request carries the plan that re-applies the code).

Edits are byte ranges against the original file, applied from the end, so one pass over the
text however many attributes change (the remediation of 100 resources edits one file once).
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterable, Iterator, Sequence
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


# --- what changed in one resource block ------------------------------------------------------------


Change = tuple[str, Any, Any]  # (path, before, after) as a drift finding lists them


def block_edits(hcl: HclFile, block: Node, changes: Sequence[Change]) -> list[Edit]:
    """The edits that make this block read the live values of `changes`; NotAdoptable says why not.

    Paths are grouped by their first step (the attribute or nested block they belong to), because a
    list, a map or a nested block is rewritten from all of its changes at once."""
    groups: dict[str, list[Change]] = {}
    for path, before, after in changes:
        for value in (before, after):
            if value == SENSITIVE or _contains(value, SENSITIVE):
                raise NotAdoptable(f"{path} is sensitive: never written into code")
        if after == UNKNOWN or _contains(after, UNKNOWN):
            raise NotAdoptable(f"{path}: the live value is not known")
        head, _, rest = path.partition(".")
        groups.setdefault(head, []).append((rest, before, after))
    edits: list[Edit] = []
    for head, items in groups.items():
        edits += _attribute_edits(hcl, block, head, items)
    return edits


def _attribute_edits(hcl: HclFile, block: Node, head: str, items: list[Change]) -> list[Edit]:
    body = _block_body(block)
    attribute = _attribute(hcl, body, head) if body is not None else None
    if attribute is None:
        if body is not None and _dynamic_block(hcl, body, head):
            raise NotAdoptable(f"{head} is written by a dynamic block, not literal blocks")
        nested = _nested_blocks(hcl, body, head) if body is not None else []
        if nested:
            return _nested_block_edits(hcl, nested, head, items)
        return [_new_attribute(hcl, block, head, items)]
    value = _single(_expression(attribute))
    if value is not None and value.type == "literal_value" and _literal(attribute) is not None:
        if len(items) != 1 or items[0][0]:
            raise NotAdoptable(f"{head}.{items[0][0] or items[-1][0]}: the code sets {head} to one value")
        _, before, after = items[0]
        literal = _literal(attribute)
        assert literal is not None
        _check_applied(hcl, literal, head, before)
        if after is None:
            return [_remove_line(hcl, attribute)]
        return [Edit(literal.start_byte, literal.end_byte, hcl_literal(head, after).encode())]
    collection = value.children[0] if value is not None and value.type == "collection_value" else None
    if collection is not None and collection.type == "object":
        return [_map_edit(hcl, collection, head, rest, before, after) for rest, before, after in items]
    if collection is not None and collection.type == "tuple":
        return _tuple_edits(hcl, collection, head, items)
    raise NotAdoptable(f"{head} is set by an expression ({_expression_text(hcl, attribute)}), not a literal")


def _new_attribute(hcl: HclFile, block: Node, head: str, items: list[Change]) -> Edit:
    """An attribute the code does not write: a scalar, a map or a list of literals, as a new line."""
    present = [(rest, after) for rest, _, after in items if after is not None]
    if not present:
        raise NotAdoptable(f"{head} is not in the code and the live value is empty")
    if len(items) == 1 and not items[0][0]:
        return _insert_line(hcl, block, f"{head} = {hcl_literal(head, present[0][1])}")
    if all(rest.isdigit() for rest, _ in present):
        values = [after for _, after in sorted(present, key=lambda p: int(p[0]))]
        return _insert_line(hcl, block, f"{head} = [{', '.join(hcl_literal(head, v) for v in values)}]")
    if any(rest.split(".")[0].isdigit() for rest, _ in present):
        raise NotAdoptable(f"{head} is not in the code: a nested block is not written from drift")
    lines = "\n".join(f"{_key(rest)} = {hcl_literal(f'{head}.{rest}', after)}" for rest, after in present)
    return _insert_line(hcl, block, f"{head} = {{\n{lines}\n}}")


# --- maps ------------------------------------------------------------------------------------------------


def _map_edit(hcl: HclFile, obj: Node, head: str, key: str, before: Any, after: Any) -> Edit:
    """One key of an object literal (tags, labels): changed in place, added as a line, or removed."""
    path = f"{head}.{key}"
    if not key:
        raise NotAdoptable(f"{head} is a map: the whole map is not replaced")
    element = _object_element(hcl, obj, key)
    if element is None:
        if after is None:
            raise NotAdoptable(f"{path} is not in the code and the live value is empty")
        return _insert_in_object(hcl, obj, f"{_key(key)} = {hcl_literal(path, after)}")
    value = _element_value(element)
    if value is None:
        expressions = [c for c in element.children if c.type == "expression"]
        shown = hcl.text(expressions[-1]) if expressions else hcl.text(element)
        raise NotAdoptable(f"{path} is set by an expression ({shown[:60]}), not a literal")
    _check_applied(hcl, value, path, before)
    if after is None:
        return _remove_element(hcl, obj, element, "object")
    return Edit(value.start_byte, value.end_byte, hcl_literal(path, after).encode())


# --- lists of literals -----------------------------------------------------------------------------------


def _tuple_edits(hcl: HclFile, tuple_: Node, head: str, items: list[Change]) -> list[Edit]:
    """A list of literals (cidr_blocks = ["10.0.0.0/16"]): elements changed in place, removed, appended.

    Elements are found by the applied value the finding names (`before`), at its index or, for a set
    whose order is not the code's, wherever it is once; an element the code writes otherwise is not
    adopted: the code is not what was applied."""
    elements = [c for c in tuple_.children if c.type == "expression"]
    current = []
    for element in elements:
        literal = _single(element)
        if literal is None or literal.type != "literal_value" or _interpolated(literal):
            raise NotAdoptable(f"{head} has an element set by an expression ({hcl.text(element)[:60]})")
        current.append(_python_value(hcl, literal, head))
    edits: list[Edit] = []
    taken: set[int] = set()
    added: list[tuple[int, Any]] = []
    for rest, before, after in items:
        if not rest.isdigit():
            raise NotAdoptable(f"{head}.{rest} is inside a list element: only lists of literals are adopted")
        if before is None:
            if after is not None:
                added.append((int(rest), after))
            continue
        index = _element_index(current, int(rest), before, taken)
        if index is None:
            raise NotAdoptable(f"{head}: the code does not hold the applied value {before!r}")
        taken.add(index)
        if after is None:
            edits.append(_remove_element(hcl, tuple_, elements[index], "tuple"))
        else:
            literal = _single(elements[index])
            assert literal is not None
            edits.append(Edit(literal.start_byte, literal.end_byte, hcl_literal(head, after).encode()))
    if added:
        values = [hcl_literal(head, v) for _, v in sorted(added, key=lambda a: a[0])]
        edits.append(_append_to_tuple(hcl, tuple_, elements, values))
    return edits


def _element_index(current: list[Any], index: int, before: Any, taken: set[int]) -> int | None:
    if index < len(current) and index not in taken and _same(current[index], before):
        return index
    matches = [i for i, value in enumerate(current) if i not in taken and _same(value, before)]
    return matches[0] if len(matches) == 1 else None


def _append_to_tuple(hcl: HclFile, tuple_: Node, elements: list[Node], values: list[str]) -> Edit:
    source = hcl.source
    end = next(c for c in tuple_.children if c.type == "tuple_end")
    multiline = b"\n" in source[tuple_.start_byte : tuple_.end_byte]
    if not elements:
        return Edit(end.start_byte, end.start_byte, ", ".join(values).encode())
    last = elements[-1]
    comma = _comma_after(tuple_, last)
    if multiline and not source[_line_start(source, end.start_byte) : end.start_byte].strip():
        indent = _indent_of(source, elements[0].start_byte)
        lines = b"".join(indent + v.encode() + b",\n" for v in values)
        at = _line_start(source, end.start_byte)
        if comma is None:  # the last element gets its comma: HCL needs one between elements
            return Edit(last.end_byte, at, b"," + source[last.end_byte : at] + lines)
        return Edit(at, at, lines)
    if comma is not None:
        return Edit(comma.end_byte, comma.end_byte, b" " + ", ".join(values).encode() + b",")
    return Edit(last.end_byte, last.end_byte, (", " + ", ".join(values)).encode())


def _comma_after(container: Node, element: Node) -> Node | None:
    siblings = container.children
    position = siblings.index(element) if element in siblings else -1
    following = siblings[position + 1] if 0 <= position < len(siblings) - 1 else None
    return following if following is not None and following.type == "," else None


def _remove_element(hcl: HclFile, container: Node, element: Node, kind: str) -> Edit:
    """An element alone on its line loses its line; one of a one-line list loses itself and a comma."""
    source = hcl.source
    start = _line_start(source, element.start_byte)
    comma = _comma_after(container, element)
    end_of = comma.end_byte if comma is not None else element.end_byte
    line_end = source.find(b"\n", end_of)
    line_end = len(source) if line_end < 0 else line_end
    rest_of_line = source[end_of:line_end].strip()
    if not source[start : element.start_byte].strip() and (not rest_of_line or rest_of_line.startswith(b"#")
                                                           or rest_of_line.startswith(b"//")):
        return Edit(start, line_end + 1 if line_end < len(source) else line_end, b"")
    if kind == "object":
        raise NotAdoptable("the value shares its line with other code")
    if comma is not None:  # `"a", "b"` -> `"b"`: the element, its comma and the space after it
        after_space = end_of
        while after_space < len(source) and source[after_space : after_space + 1] in (b" ", b"\t"):
            after_space += 1
        return Edit(element.start_byte, after_space, b"")
    siblings = [c for c in container.children if c.type == "expression"]
    position = siblings.index(element)
    if position == 0:
        return Edit(element.start_byte, element.end_byte, b"")
    previous = siblings[position - 1]  # the last of several: from the end of the one before it
    return Edit(previous.end_byte, element.end_byte, b"")


# --- nested blocks ---------------------------------------------------------------------------------------


def _nested_block_edits(hcl: HclFile, blocks: list[Node], head: str, items: list[Change]) -> list[Edit]:
    """Changes inside nested blocks (ingress { from_port = 22 }): each changed element of the block
    list (or set) must map onto exactly one literal block, the one whose values are the applied ones
    the finding names; a block removed outside Terraform loses its lines, one added is not written."""
    by_index: dict[str, list[Change]] = {}
    for rest, before, after in items:
        index, _, inner = rest.partition(".")
        if not index.isdigit():
            raise NotAdoptable(f"{head}.{rest}: {head} is a nested block")
        by_index.setdefault(index, []).append((inner, before, after))
    edits: list[Edit] = []
    chosen: set[int] = set()
    for index, changes in by_index.items():
        known = [(inner, before) for inner, before, _ in changes if before is not None]
        if not known and len(blocks) != 1:
            # only new values: a whole block added, or values added to one of several blocks
            raise NotAdoptable(f"{head}.{index}: a block added outside Terraform (or values added to one of "
                               f"{len(blocks)} {head} blocks) is not written into code")
        matches = [b for b in blocks if all(_block_holds(hcl, b, inner, before) for inner, before in known)]
        if len(matches) != 1:
            raise NotAdoptable(
                f"{head}.{index}: the change does not map onto one {head} block "
                f"({len(matches)} of {len(blocks)} hold the applied values)"
            )
        block = matches[0]
        if block.start_byte in chosen:
            raise NotAdoptable(f"two changes of {head} map onto the same block")
        chosen.add(block.start_byte)
        if all(after is None for _, _, after in changes) and _whole_block_gone(hcl, block, changes):
            edits.append(_remove_line(hcl, block))
        else:
            edits += block_edits(hcl, block, changes)
    return edits


def _whole_block_gone(hcl: HclFile, block: Node, changes: list[Change]) -> bool:
    """Every value the block writes is among those the finding says are gone."""
    gone = {inner.partition(".")[0] for inner, _, _ in changes}
    body = _block_body(block)
    written = {hcl.text(c.children[0]) for c in (body.children if body is not None else ())
               if c.type in ("attribute", "block") and c.children}
    return written <= gone


def _block_holds(hcl: HclFile, block: Node, path: str, value: Any) -> bool:
    """Whether the literal at `path` inside this block is `value` (an expression never is)."""
    body = _block_body(block)
    if body is None:
        return False
    head, _, rest = path.partition(".")
    attribute = _attribute(hcl, body, head)
    if attribute is None:
        nested = _nested_blocks(hcl, body, head)
        index, _, inner = rest.partition(".")
        if not nested or not index.isdigit():
            return False
        return any(_block_holds(hcl, b, inner, value) for b in nested)
    node = _single(_expression(attribute))
    if node is None:
        return False
    if node.type == "literal_value" and not rest and not _interpolated(node):
        return _same(_python_value(hcl, node, head), value)
    if node.type != "collection_value":
        return False
    collection = node.children[0]
    if collection.type == "object":
        element = _object_element(hcl, collection, rest)
        literal = _element_value(element) if element is not None else None
        return literal is not None and _same(_python_value(hcl, literal, path), value)
    if collection.type == "tuple" and rest.isdigit():
        elements = [_single(c) for c in collection.children if c.type == "expression"]
        return any(e is not None and e.type == "literal_value" and not _interpolated(e)
                   and _same(_python_value(hcl, e, path), value) for e in elements)
    return False


def _check_applied(hcl: HclFile, literal: Node, path: str, before: Any) -> None:
    """The code must hold the value that was applied, else it is not the code of this state."""
    code = _python_value(hcl, literal, path)
    if not _same(code, before):
        raise NotAdoptable(f"{path}: the code holds {code!r}, not the applied value {before!r}")


def _same(code: Any, applied: Any) -> bool:
    """A literal of the code against a value of the state ("22" and 22 are one to Terraform)."""
    if code == applied and isinstance(code, bool) == isinstance(applied, bool):
        return True
    if isinstance(code, str) != isinstance(applied, str) and not isinstance(code, bool | None):
        return str(code) == str(applied)
    return False


def _python_value(hcl: HclFile, literal: Node, path: str) -> Any:
    text = hcl.text(literal).strip()
    kind = literal.children[0].type if literal.children else ""
    if kind == "null_lit":
        return None
    if kind == "bool_lit":
        return text == "true"
    if kind == "numeric_lit":
        try:
            number = float(text)
        except ValueError:
            raise NotAdoptable(f"{path}: cannot read the number {text[:40]}") from None
        return int(number) if number.is_integer() and "." not in text and "e" not in text.lower() else number
    try:  # HCL string escapes are JSON's, plus $${ and %%{ for literal template sequences
        return json.loads(text.replace("$${", "${").replace("%%{", "%{"))
    except ValueError:
        raise NotAdoptable(f"{path}: the string {text[:40]} is not read as a plain literal") from None


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
    """A Python value from the plan as an HCL literal (a scalar: lists and maps are edited element by
    element, never written whole from a value)."""
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


def _nested_blocks(hcl: HclFile, body: Node, name: str) -> list[Node]:
    return [c for c in body.children if c.type == "block" and c.children and hcl.text(c.children[0]) == name]


def _dynamic_block(hcl: HclFile, body: Node, name: str) -> bool:
    """A `dynamic "name" { for_each = ... }` block: its values come from an expression."""
    return any(
        c.type == "block" and len(c.children) > 1 and hcl.text(c.children[0]) == "dynamic"
        and _string_value(hcl, c.children[1]) == name
        for c in body.children
    )


def _single(node: Node | None) -> Node | None:
    """The one child of an expression node (None when it is an operation, a call, a reference...)."""
    if node is None or len(node.children) != 1:
        return None
    return node.children[0]


def _interpolated(literal: Node) -> bool:
    string = next((c for c in literal.children if c.type == "string_lit"), None)
    return string is not None and any(c.type == "template_interpolation" for c in string.children)


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
