"""Turn `terraform show -json <planfile>` output into drift findings. Pure: no I/O, no database.

Terraform and OpenTofu write the same document (https://developer.hashicorp.com/terraform/internals/json-format).
Two lists matter:

* ``resource_drift`` — what changed *outside* Terraform: for each resource, ``before`` is the last applied
  state and ``after`` is what the refresh just read from the provider. One ``kind="drift"`` finding per
  resource with a meaningful difference.
* ``resource_changes`` — what ``apply`` would do: ``before`` is the refreshed object, ``after`` the
  configuration's intent. A planned change that is *not* just undoing drift means the code differs from
  what was applied: one ``kind="pending-change"`` finding.

Rules (the tests in tests/unit/test_plan_parser.py pin each one against recorded real plans):

Differences
    A recursive diff of ``before``/``after`` yields leaf paths written as dots with list indexes
    (``tags.env``, ``ingress.1.cidr_blocks.0``). Lists compare index by index, so an element added in the
    middle of a set shows as changes from that index on. Identical subtrees are skipped whole.

Noise
    ``null``, ``{}``, ``[]``, ``""`` and a missing key are the same value. Providers flip between them on
    every refresh (``tags: null`` -> ``{}`` on each untagged AWS resource), so a drift entry whose only
    differences are noise yields nothing, and a real clean plan yields zero findings. ``false`` and ``0``
    are values, not noise.

Sensitive values
    ``before_sensitive``/``after_sensitive`` mirror the values with booleans; ``true`` marks a whole
    subtree. A leaf marked on *either* side is compared (a rotated secret is drift) but both sides are
    stored as ``"(sensitive)"``. Only attribute values are copied out of a plan, never ``variables``
    (which hold sensitive inputs in clear text) or outputs.

Unknown values
    Leaves marked in ``after_unknown`` read ``"(known after apply)"``. They are listed for ``update``
    changes when the attribute had a value (``version: 2 -> (known after apply)``), and for ``replace``
    only when ``replace_paths`` names them as the cause; provider-computed values of a new object
    (``arn``, ``id``...) are effects, not news. ``create`` and ``delete`` findings
    carry no attribute list: the whole object appears or disappears.

Pending changes
    A planned leaf change moves an attribute from the refreshed value to the configured one. It is
    *explained by drift* when the configured value equals the last applied value (the drift entry's
    ``before``): applying would just undo the drift, which the drift finding already reports. A
    ``resource_changes`` entry becomes a pending-change finding when it has at least one known leaf change
    that drift does not explain; its attributes are those leaves. Without a drift entry the refreshed
    object *is* the applied one, so every meaningful change is pending, and create, delete and replace
    are always pending. When a drifted resource is planned for create/delete/replace, unknown leaves are
    ignored (they follow from the revert). ``no-op``, ``read`` (data sources), ``forget`` and imports that
    change nothing are skipped; an import that also updates is reported like any update. Deposed objects
    (leftovers of a failed create-before-destroy) are pending deletes whose fingerprint includes the
    deposed key.

Identity
    ``fingerprint`` = sha256 of (kind, address, change[, deposed key]): stable across runs, one finding per
    resource and change type, whatever attributes moved; never timestamps or line numbers. The scan target
    is added by the database layer. ``provider_id`` is the object's ``id``, else its ``arn``, read from the
    object that exists in reality (drift: ``after`` then ``before``; pending: ``before`` then ``after``),
    never from a sensitive or unknown value.

Severity
    ``high`` for delete and replace; ``medium`` for access-control resources (type contains
    ``security_group``, ``network_acl``, or a word ``iam``, ``policy``, ``role``, ``firewall``, ``acl``);
    ``low`` otherwise.

Malformed input raises PlanError naming the problem; an errored plan is refused because findings from an
incomplete plan would wrongly resolve open ones.
"""

from __future__ import annotations

import gc
import hashlib
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final

from dispatcher.errors import NightshiftError

SENSITIVE: Final = "(sensitive)"
UNKNOWN: Final = "(known after apply)"

SUPPORTED_FORMAT_MAJOR: Final = 1
FINGERPRINT_VERSION: Final = "nightshift-plan-v1"

_SKIPPED_ACTIONS: Final = frozenset({("no-op",), ("read",), ("forget",)})
_KNOWN_ACTIONS: Final = frozenset({"no-op", "read", "create", "update", "delete", "forget"})
_ACCESS_CONTROL_WORDS: Final = frozenset({"iam", "policy", "role", "firewall", "acl"})
_ACCESS_CONTROL_PHRASES: Final = ("security_group", "network_acl")

_MISSING: Final = object()


class PlanError(NightshiftError):
    """The input is not a usable Terraform/OpenTofu JSON plan; the message says what is wrong."""


@dataclass(frozen=True)
class AttributeChange:
    """One changed leaf: values already masked (``"(sensitive)"``, ``"(known after apply)"``)."""

    path: str
    before: Any
    after: Any

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "before": self.before, "after": self.after}


@dataclass(frozen=True)
class Finding:
    kind: str  # "drift" | "pending-change"
    address: str
    module: str | None
    type: str
    name: str
    provider_id: str | None
    change: str  # "update" | "delete" | "replace" | "create"
    attributes: tuple[AttributeChange, ...]
    severity: str  # "high" | "medium" | "low"
    deposed: str | None = None

    @property
    def fingerprint(self) -> str:
        parts = [FINGERPRINT_VERSION, self.kind, self.address, self.change]
        if self.deposed:
            parts.append(f"deposed={self.deposed}")
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "address": self.address,
            "module": self.module,
            "type": self.type,
            "name": self.name,
            "provider_id": self.provider_id,
            "change": self.change,
            "severity": self.severity,
            "attributes": [attribute.to_json() for attribute in self.attributes],
            "fingerprint": self.fingerprint,
        }


# --- entry point -----------------------------------------------------------------------------------------


def parse_plan(data: bytes | str | Mapping[str, Any]) -> list[Finding]:
    """Findings of one plan: drift first, then pending changes, each in the plan's (address) order."""
    # A large plan is millions of fresh dicts and lists, none of them in a cycle. Left on, the cyclic
    # garbage collector walks the growing heap again and again while they are built: pausing it
    # makes loading and parsing a 10,000-resource plan about 3x faster (bench/bench_drift.py).
    with _gc_paused():
        return _parse(data)


@contextmanager
def _gc_paused() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _parse(data: bytes | str | Mapping[str, Any]) -> list[Finding]:
    plan = _load(data)
    _check_plan(plan)
    drift_entries = _entries(plan, "resource_drift")
    change_entries = _entries(plan, "resource_changes")

    findings: list[Finding] = []
    drift_by_address: dict[str, _Entry] = {}
    for entry in drift_entries:
        if entry.mode == "data" or entry.deposed:
            continue
        drift_by_address[entry.address] = entry
        finding = _drift_finding(entry)
        if finding is not None:
            findings.append(finding)
    for entry in change_entries:
        if entry.mode == "data":
            continue
        drift = None if entry.deposed else drift_by_address.get(entry.address)
        finding = _pending_finding(entry, drift)
        if finding is not None:
            findings.append(finding)
    return findings


# --- loading and validation ------------------------------------------------------------------------------


def _load(data: bytes | str | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(data, Mapping):
        return data
    if isinstance(data, bytes | bytearray):
        try:
            data = bytes(data).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise PlanError(f"plan JSON is not UTF-8 text (bad byte at offset {exc.start})") from None
    if not isinstance(data, str):
        raise PlanError(f"expected plan JSON as bytes, str or dict, got {type(data).__name__}")
    if not data.strip():
        raise PlanError("plan JSON is empty (did `terraform show -json` fail?)")
    try:
        loaded = json.loads(data)
    except json.JSONDecodeError as exc:
        at_end = exc.pos >= len(data.rstrip()) or exc.msg.startswith("Unterminated string")
        hint = " (unexpected end of input - truncated?)" if at_end else ""
        where = f"line {exc.lineno} column {exc.colno}"
        # some of json's messages end in "at" ("Unterminated string starting at"): no "at at"
        raise PlanError(f"plan is not valid JSON: {exc.msg.removesuffix(' at')} at {where}{hint}") from None
    except RecursionError:
        raise PlanError("plan JSON is nested too deeply to be a Terraform plan") from None
    if not isinstance(loaded, dict):
        raise PlanError(f"not a Terraform plan: expected a JSON object, got {_json_type(loaded)}")
    return loaded


def _check_plan(plan: Mapping[str, Any]) -> None:
    version = plan.get("format_version")
    if version is None:
        raise PlanError("not a Terraform plan: no format_version (expected `terraform show -json PLANFILE`)")
    if not isinstance(version, str) or not re.fullmatch(r"\d+\.\d+(\.\d+)?", version):
        raise PlanError(f'not a Terraform plan: format_version {version!r} is not like "1.2"')
    major = int(version.split(".", 1)[0])
    if major > SUPPORTED_FORMAT_MAJOR:
        raise PlanError(
            f"plan format_version {version} is not supported (major version {major}; "
            f"this parser reads {SUPPORTED_FORMAT_MAJOR}.x)"
        )
    if not any(key in plan for key in ("planned_values", "resource_changes", "resource_drift")):
        if "values" in plan:
            raise PlanError("this is state JSON, not a plan: run `terraform show -json <planfile>`")
        raise PlanError("not a Terraform plan: no planned_values, resource_changes or resource_drift")
    if plan.get("errored") is True:
        raise PlanError("the plan errored, so it is incomplete: refusing to report findings from it")


@dataclass(frozen=True)
class _Entry:
    """A validated resource_drift/resource_changes element."""

    address: str
    mode: str
    type: str
    name: str
    module: str | None
    deposed: str | None
    actions: tuple[str, ...]
    change: Mapping[str, Any]


def _entries(plan: Mapping[str, Any], key: str) -> list[_Entry]:
    raw = plan.get(key)
    if raw is None:
        return []  # absent: older Terraform, refresh-only plans have no resource_changes
    if not isinstance(raw, list):
        raise PlanError(f"not a Terraform plan: {key} must be a list, got {_json_type(raw)}")
    return [_entry(item, f"{key}[{index}]") for index, item in enumerate(raw)]


def _entry(item: Any, where: str) -> _Entry:
    if not isinstance(item, dict):
        raise PlanError(f"{where} must be an object, got {_json_type(item)}")
    address = item.get("address")
    if not isinstance(address, str) or not address:
        raise PlanError(f"{where} has no address")
    where = f"{where} ({address})"
    change = item.get("change")
    if not isinstance(change, dict):
        raise PlanError(f"{where} has no change object")
    actions = change.get("actions")
    if not isinstance(actions, list) or not actions or not all(isinstance(a, str) for a in actions):
        raise PlanError(f"{where} has no change.actions list")
    unknown = [a for a in actions if a not in _KNOWN_ACTIONS]
    if unknown:
        raise PlanError(f"{where} has unknown action(s) {', '.join(unknown)}")
    fields: dict[str, str] = {}
    for field_name in ("type", "name"):
        value = item.get(field_name)
        if not isinstance(value, str):
            raise PlanError(f"{where} has no {field_name}")
        fields[field_name] = value
    module = item.get("module_address")
    deposed = item.get("deposed")
    return _Entry(
        address=address,
        mode=str(item.get("mode") or "managed"),
        type=fields["type"],
        name=fields["name"],
        module=module if isinstance(module, str) and module else None,
        deposed=deposed if isinstance(deposed, str) and deposed else None,
        actions=tuple(actions),
        change=change,
    )


def _json_type(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


# --- findings --------------------------------------------------------------------------------------------


def _change_type(actions: tuple[str, ...]) -> str | None:
    """["delete","create"] and ["create","delete"] are replacements; no-op/read/forget are not changes."""
    if actions in _SKIPPED_ACTIONS:
        return None
    verbs = set(actions)
    if {"create", "delete"} <= verbs:
        return "replace"
    for verb in ("delete", "create", "update"):  # ["create","forget"] creates the new object
        if verb in verbs:
            return verb
    return None


def _drift_finding(entry: _Entry) -> Finding | None:
    change = _change_type(entry.actions)
    if change is None:
        return None
    marks = _marks(entry.change)
    before, after = entry.change.get("before"), entry.change.get("after")
    leaves = list(_diff(before, after, marks, ()))
    if change == "update" and not leaves:
        return None  # only noise, e.g. tags null -> {}
    attributes = () if change in ("create", "delete") else tuple(_render(leaf) for leaf in leaves)
    return _finding("drift", entry, change, attributes, reality=("after", "before"))


def _pending_finding(entry: _Entry, drift: _Entry | None) -> Finding | None:
    change = _change_type(entry.actions)
    if change is None:
        return None
    marks = _marks(entry.change)
    before, after = entry.change.get("before"), entry.change.get("after")
    leaves = list(_diff(before, after, marks, ()))

    if drift is not None:
        applied = drift.change.get("before")
        leaves = [leaf for leaf in leaves if leaf.unknown or not _reverts(leaf, applied)]
        if all(leaf.unknown for leaf in leaves):
            return None  # applying would only undo the drift already reported
    elif change == "update" and not leaves:
        return None  # Terraform plans an update for noise only

    if change in ("create", "delete"):
        attributes: tuple[AttributeChange, ...] = ()
    elif change == "replace":
        causes = _replace_paths(entry.change)
        attributes = tuple(_render(leaf) for leaf in leaves if not leaf.unknown or _caused(leaf.path, causes))
    else:  # a computed attribute that had no value and will get one is not news
        attributes = tuple(_render(leaf) for leaf in leaves if not (leaf.unknown and _is_empty(leaf.before)))
    return _finding("pending-change", entry, change, attributes, reality=("before", "after"))


def _reverts(leaf: _Leaf, applied: Any) -> bool:
    """True when the planned value is the last applied one, i.e. the plan undoes drift at this leaf."""
    return _same(leaf.after, _lookup(applied, leaf.path))


def _finding(
    kind: str,
    entry: _Entry,
    change: str,
    attributes: tuple[AttributeChange, ...],
    reality: tuple[str, str],
) -> Finding:
    """`reality` names the side of the change that describes the object as it exists now."""
    return Finding(
        kind=kind,
        address=entry.address,
        module=entry.module,
        type=entry.type,
        name=entry.name,
        provider_id=_provider_id(entry.change, reality),
        change=change,
        attributes=attributes,
        severity=_severity(entry.type, change),
        deposed=entry.deposed,
    )


def _provider_id(change: Mapping[str, Any], prefer: tuple[str, str]) -> str | None:
    """`id`, else `arn`, of the first object in `prefer` order that has one.

    A key marked sensitive on either side is never used; an unknown value in `after` does not count.
    """
    marks = _marks(change)
    for key in ("id", "arn"):
        if _marked(marks.before_sensitive, key) or _marked(marks.after_sensitive, key):
            continue
        for side in prefer:
            if side == "after" and _marked(marks.after_unknown, key):
                continue
            obj = change.get(side)
            value = obj.get(key) if isinstance(obj, dict) else None
            if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
                return str(value)
    return None


def _severity(resource_type: str, change: str) -> str:
    if change in ("delete", "replace"):
        return "high"
    words = set(resource_type.split("_"))
    if words & _ACCESS_CONTROL_WORDS or any(phrase in resource_type for phrase in _ACCESS_CONTROL_PHRASES):
        return "medium"
    return "low"


def _replace_paths(change: Mapping[str, Any]) -> set[tuple[str, ...]]:
    paths = change.get("replace_paths")
    if not isinstance(paths, list):
        return set()
    return {tuple(str(step) for step in path) for path in paths if isinstance(path, list)}


def _caused(path: tuple[str, ...], causes: set[tuple[str, ...]]) -> bool:
    """True when a replace_paths entry names this leaf or one of its parents."""
    return any(path[: len(cause)] == cause for cause in causes)


# --- the diff --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Marks:
    """The mirror structures of one change: each is bool / dict / list / None, `true` covering a subtree."""

    before_sensitive: Any
    after_sensitive: Any
    after_unknown: Any

    def child(self, key: str | int) -> _Marks:
        return _Marks(
            _child(self.before_sensitive, key),
            _child(self.after_sensitive, key),
            _child(self.after_unknown, key),
        )


def _marks(change: Mapping[str, Any]) -> _Marks:
    return _Marks(change.get("before_sensitive"), change.get("after_sensitive"), change.get("after_unknown"))


@dataclass(frozen=True)
class _Leaf:
    path: tuple[str, ...]
    before: Any
    after: Any
    marks: _Marks
    unknown: bool


def _diff(before: Any, after: Any, marks: _Marks, path: tuple[str, ...]) -> Iterator[_Leaf]:
    """Changed leaves of before -> after, noise ignored. Raw values: mask them with _render()."""
    if marks.after_unknown is True:
        yield _Leaf(path, before, _MISSING, marks, unknown=True)
        return
    if before == after and type(before) is type(after):
        return  # identical subtree: the common case, compared at C speed
    children = _children(before, after)
    if children is None:
        if not _same(before, after):
            yield _Leaf(path, before, after, marks, unknown=False)
        return
    unknown = marks.after_unknown
    for key, b, a in children:
        # skip identical children before building their marks: most of a resource did not change
        if b == a and type(b) is type(a) and not (unknown and _child(unknown, key)):
            continue
        yield from _diff(b, a, marks.child(key), (*path, str(key)))


def _children(before: Any, after: Any) -> list[tuple[str | int, Any, Any]] | None:
    """(key, before, after) of two objects or two lists (an empty value stands for either); else None."""
    if isinstance(before, dict) or isinstance(after, dict):
        if not (_container_or_empty(before, dict) and _container_or_empty(after, dict)):
            return None
        b = before if isinstance(before, dict) else {}
        a = after if isinstance(after, dict) else {}
        keys = list(b) + [key for key in a if key not in b]
        return [(key, b.get(key), a.get(key)) for key in keys]
    if isinstance(before, list) or isinstance(after, list):
        if not (_container_or_empty(before, list) and _container_or_empty(after, list)):
            return None
        b_list = before if isinstance(before, list) else []
        a_list = after if isinstance(after, list) else []
        return [
            (
                index,
                b_list[index] if index < len(b_list) else None,
                a_list[index] if index < len(a_list) else None,
            )
            for index in range(max(len(b_list), len(a_list)))
        ]
    return None


def _render(leaf: _Leaf) -> AttributeChange:
    """Mask a raw leaf for storage: sensitive on either side hides both values."""
    path = ".".join(leaf.path)
    if _any_true(leaf.marks.before_sensitive) or _any_true(leaf.marks.after_sensitive):
        if _marked_here(leaf.marks):
            return AttributeChange(path, SENSITIVE, UNKNOWN if leaf.unknown else SENSITIVE)
        # a container leaf with sensitive parts (e.g. a type change): mask those parts only
        before = _redact(leaf.before, leaf.marks.before_sensitive, leaf.marks.after_sensitive)
        after = (
            UNKNOWN
            if leaf.unknown
            else _redact(leaf.after, leaf.marks.after_sensitive, leaf.marks.before_sensitive)
        )
        return AttributeChange(path, before, after)
    return AttributeChange(path, leaf.before, UNKNOWN if leaf.unknown else leaf.after)


def _marked_here(marks: _Marks) -> bool:
    return marks.before_sensitive is True or marks.after_sensitive is True


def _redact(value: Any, mark: Any, other_mark: Any) -> Any:
    if mark is True or other_mark is True:
        return SENSITIVE
    if isinstance(value, dict):
        return {key: _redact(item, _child(mark, key), _child(other_mark, key)) for key, item in value.items()}
    if isinstance(value, list):
        return [_redact(item, _child(mark, i), _child(other_mark, i)) for i, item in enumerate(value)]
    return value


def _child(mark: Any, key: str | int) -> Any:
    if mark is True:
        return True
    if isinstance(mark, dict) and isinstance(key, str):
        return mark.get(key)
    if isinstance(mark, list):
        index = key if isinstance(key, int) else int(key) if key.isdigit() else -1
        return mark[index] if 0 <= index < len(mark) else None
    return None


def _marked(mark: Any, key: str) -> bool:
    return _child(mark, key) is True


def _any_true(mark: Any) -> bool:
    if mark is True:
        return True
    if isinstance(mark, dict):
        return any(_any_true(item) for item in mark.values())
    if isinstance(mark, list):
        return any(_any_true(item) for item in mark)
    return False


def _lookup(value: Any, path: Sequence[str]) -> Any:
    for step in path:
        if isinstance(value, dict):
            value = value.get(step)
        elif isinstance(value, list) and step.isdigit() and int(step) < len(value):
            value = value[int(step)]
        else:
            return None
    return value


def _is_empty(value: Any) -> bool:
    return value is None or value == "" or value == {} or value == []


def _container_or_empty(value: Any, kind: type) -> bool:
    return isinstance(value, kind) or _is_empty(value)


def _same(a: Any, b: Any) -> bool:
    """Equality where noise values are equal and booleans are not numbers."""
    if _is_empty(a) and _is_empty(b):
        return True
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if (isinstance(a, dict) and isinstance(b, dict)) or (isinstance(a, list) and isinstance(b, list)):
        return next(_diff(a, b, _NO_MARKS, ()), None) is None
    if isinstance(a, dict | list) or isinstance(b, dict | list):
        return False  # a container against a non-empty scalar, or a list against an object
    return bool(a == b)


_NO_MARKS: Final = _Marks(None, None, None)
