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
    (``tags.env``, ``ingress.1.cidr_blocks.0``). Lists compare index by index. With the provider schema
    (dispatcher.drift.schema), sets and set-nested blocks compare by value: each removed element is listed
    at its index before (values -> null), each added one at its index after (null -> values), so removing
    the first of three security-group rules names that rule instead of shifting the other two.
    Identical subtrees are skipped whole.

Noise
    ``null``, ``{}``, ``[]``, ``""`` and a missing key are the same value. Providers flip between them on
    every refresh (``tags: null`` -> ``{}`` on each untagged AWS resource), so a drift entry whose only
    differences are noise yields nothing, and a real clean plan yields zero findings. ``false`` and ``0``
    are values, not noise. Two strings holding the same JSON document (whitespace, key order) are not a
    difference: they are kept as ``json-formatting`` evidence, never a finding.

Actionable drift (configuration- and schema-aware)
    Drift of an attribute is this resource's drift only when it is something the configuration manages.
    With planned changes for the resource (a normal plan), Terraform decides: a drifted leaf counts when
    the plan would change it back; one the plan leaves alone (a bucket's ``lifecycle_rule`` mirrored from
    an ``aws_s3_bucket_lifecycle_configuration``, a security group's ``ingress`` managed by rule
    resources, ``bucket_key_enabled`` null -> false, a parameter's ``version`` after a reverted write,
    ``ignore_changes``) is ``not-managed-here`` evidence. A refresh-only plan has no planned changes: the
    plan's ``configuration`` section, its ``relevant_attributes`` and the provider schema decide. An
    attribute the configuration sets, or one that other resources refer to, counts; so does one Terraform
    enforces even when unset (optional, not computed), unless null only became false/0/"". A computed-only
    attribute (``version``) is listed in a finding but never makes one alone. An optional+computed
    attribute the configuration does not set, anything inside a nested block it does not write, and an
    unset attribute when the schema is unknown are evidence, unless they repeat a counted change exactly
    (``tags_all.env`` moving as ``tags.env`` did: listed with it). With neither configuration nor schema
    every difference counts, as before. Evidence is returned by ``read_plan`` next to the findings, masked
    like them, and never opens a finding.

Consequences of drift
    What applying would do to undo drift is credited to the drift finding (``consequences``), not reported
    as pending code: the re-creation of a resource deleted out of band, and updates of resources whose
    planned value is unknown because their configuration refers to a drifted resource (a queue's
    ``redrive_policy`` naming a dead-letter queue that must be re-created).

Sensitive values
    ``before_sensitive``/``after_sensitive`` mirror the values with booleans; ``true`` marks a whole
    subtree. A leaf marked on *either* side is compared (a rotated secret is drift) but both sides are
    stored as ``"(sensitive)"``. Sensitivity is a property of the value, not only of the path: every value
    the plan calls sensitive anywhere (sensitive root variables, marked values, sensitive outputs,
    attributes the schema marks sensitive) is masked wherever else it appears, whole or inside maps, lists,
    keys and text such as JSON (Terraform marks ``tags.Secret`` but not its copy ``tags_all.Secret``).
    Strings shorter than 4 characters are masked only as whole values. Only attribute values are copied
    out of a plan, never ``variables`` or outputs.

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
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Final

from dispatcher.drift.schema import Node, ProviderSchemas
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
# Shorter sensitive strings are masked where they are a whole value, not inside longer text: masking
# every "on" or "abc" inside other strings would destroy the report without protecting anything.
_MIN_SECRET_SUBSTRING: Final = 4
# A reference's first step that is not a managed resource of the same module.
_NOT_RESOURCE_REFERENCES: Final = frozenset({"var", "local", "module", "data", "each", "count", "path",
                                             "terraform", "self"})
_NUMBER: Final = re.compile(r"-?\d+(\.\d+)?")
_INSTANCE_KEY: Final = re.compile(r'\[(?:"(?:[^"\\]|\\.)*"|[^\]"]*)\]')


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
class Consequence:
    """What applying the code would do elsewhere to undo a drift: re-create the drifted object, or update a
    resource whose configuration refers to it (`attributes`: the referring attributes)."""

    address: str
    change: str
    attributes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"address": self.address, "change": self.change, "attributes": list(self.attributes)}


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
    consequences: tuple[Consequence, ...] = ()

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
        } | ({"consequences": [c.to_json() for c in self.consequences]} if self.consequences else {})


@dataclass(frozen=True)
class Evidence:
    """Differences seen in the plan that are not findings, kept so an operator can see why.

    `reason` is ``"not-managed-here"`` (drift of an attribute that this resource's configuration does not
    set and that Terraform would not change: a computed mirror of another resource, a provider default)
    or ``"json-formatting"`` (JSON text that differs only in whitespace or key order).
    """

    kind: str  # "drift" | "pending-change"
    address: str
    reason: str
    attributes: tuple[AttributeChange, ...]

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "address": self.address, "reason": self.reason,
                "attributes": [attribute.to_json() for attribute in self.attributes]}


@dataclass(frozen=True)
class PlanReading:
    """Findings (open and resolve in the database) and evidence (informational, never a finding)."""

    findings: list[Finding]
    evidence: list[Evidence] = field(default_factory=list)


# --- entry point -----------------------------------------------------------------------------------------


def parse_plan(
    data: bytes | str | Mapping[str, Any], schemas: ProviderSchemas | None = None,
) -> list[Finding]:
    """Findings of one plan: drift first, then pending changes, each in the plan's (address) order.

    `schemas` (dispatcher.drift.schema) makes the parser schema-aware: sets compared by value, computed
    mirrors told apart in refresh-only plans, schema-sensitive values masked. Without it the plan's own
    configuration section and planned changes still decide.
    """
    return read_plan(data, schemas).findings


def read_plan(data: bytes | str | Mapping[str, Any], schemas: ProviderSchemas | None = None) -> PlanReading:
    """parse_plan's findings and the evidence that was deliberately not turned into findings."""
    # A large plan is millions of fresh dicts and lists, none of them in a cycle. Left on, the cyclic
    # garbage collector walks the growing heap again and again while they are built: pausing it
    # makes loading and parsing a 10,000-resource plan about 3x faster (bench/bench_drift.py).
    with _gc_paused():
        return _parse(data, schemas)


def planned_changes(data: bytes | str | Mapping[str, Any]) -> list[tuple[str, str]]:
    """What `apply` would do, as (address, change) for each managed resource the plan changes, in the
    plan's order; change is create, update, delete or replace (no-op, read and forget are left out).
    A deposed object's delete is listed too: Terraform counts it among the destroys."""
    with _gc_paused():
        plan = _load(data)
        _check_plan(plan)
        changes = []
        for entry in _entries(plan, "resource_changes"):
            change = None if entry.mode == "data" else _change_type(entry.actions)
            if change is not None:
                changes.append((entry.address, change))
        return changes


@contextmanager
def _gc_paused() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _parse(data: bytes | str | Mapping[str, Any], schemas: ProviderSchemas | None) -> PlanReading:
    plan = _load(data)
    _check_plan(plan)
    drift_entries = _entries(plan, "resource_drift")
    change_entries = _entries(plan, "resource_changes")
    context = _Context.of(plan, schemas, drift_entries, change_entries)

    planned: dict[str, _Entry] = {}
    for entry in change_entries:
        if entry.mode != "data" and not entry.deposed:
            planned[entry.address] = entry

    drift_findings: dict[str, Finding] = {}  # address -> drift finding
    evidence: list[Evidence] = []
    drift_by_address: dict[str, _Entry] = {}
    for entry in drift_entries:
        if entry.mode == "data" or entry.deposed:
            continue
        drift_by_address[entry.address] = entry
        finding = _drift_finding(entry, planned.get(entry.address), context, evidence)
        if finding is not None:
            drift_findings[entry.address] = finding

    consequences: dict[str, list[Consequence]] = {}
    pending: list[Finding] = []
    for entry in change_entries:
        if entry.mode == "data":
            continue
        drift = None if entry.deposed else drift_by_address.get(entry.address)
        finding = _pending_finding(entry, drift, drift_findings, context, evidence, consequences)
        if finding is not None:
            pending.append(finding)

    findings = [
        replace(finding, consequences=tuple(consequences[address])) if address in consequences else finding
        for address, finding in drift_findings.items()
    ]
    return PlanReading(findings + pending, evidence)


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
    provider: str | None = None

    @property
    def config_address(self) -> str:
        """The resource's address in the configuration: no module or resource instance keys."""
        prefix = "data." if self.mode == "data" else ""
        local = f"{prefix}{self.type}.{self.name}"
        return f"{_INSTANCE_KEY.sub('', self.module)}.{local}" if self.module else local


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
        provider=item["provider_name"] if isinstance(item.get("provider_name"), str) else None,
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


def _drift_finding(
    entry: _Entry, planned: _Entry | None, context: _Context, evidence: list[Evidence],
) -> Finding | None:
    """The drift finding of one resource_drift entry, or None; differences that are not actionable go to
    `evidence`."""
    change = _change_type(entry.actions)
    if change is None:
        return None
    if change in ("create", "delete"):
        return _finding("drift", entry, change, (), context, reality=("after", "before"))
    marks = _marks(entry.change)
    node = context.node(entry)
    leaves = list(_diff(entry.change.get("before"), entry.change.get("after"), marks, (), node))
    if not leaves:
        return None  # only noise, e.g. tags null -> {}
    kept, ignored = _actionable(entry, leaves, planned, node, context)
    if ignored:
        evidence.extend(_evidence("drift", entry.address, ignored, context))
    if kept is None:
        return None
    attributes = tuple(context.render(leaf) for leaf in kept)
    return _finding("drift", entry, change, attributes, context, reality=("after", "before"))


def _actionable(
    entry: _Entry, leaves: list[_Leaf], planned: _Entry | None, node: Node | None, context: _Context,
) -> tuple[list[_Leaf] | None, list[_Leaf]]:
    """Split drifted leaves into those a finding lists (None: no finding) and those it ignores.

    Terraform's own plan is the best judge: when the plan has a planned change for this resource, a drifted
    leaf is actionable when applying would change it (revert it), and ignored when Terraform leaves it as
    it is (a computed mirror of a separate resource, a provider default, `ignore_changes`). A refresh-only
    plan has no planned changes: then the configuration and the provider schema decide (_judge).
    """
    if context.has_changes and planned is not None:
        planned_leaves = context.planned_leaves(planned)
        exact = {leaf.path for leaf in planned_leaves}
        touched: list[tuple[str, ...]] | None = None
        kept, ignored = [], []
        for leaf in leaves:
            if leaf.cosmetic or (_zero_flip(leaf) and _in_place(leaf, entry.change)):
                ignored.append(leaf)
                continue
            if leaf.path not in exact:  # the common case, a reverted leaf, needs no prefix search
                if touched is None:
                    touched = [_settle_key(planned_leaf.path) for planned_leaf in planned_leaves]
                if not _touches(_settle_key(leaf.path), touched):
                    ignored.append(leaf)
                    continue
            kept.append(leaf)
        return (kept or None), ignored
    verdicts = [(leaf, _judge(entry, leaf, node, context)) for leaf in leaves]
    actionable = [leaf for leaf, verdict in verdicts if verdict == "actionable"]
    if not actionable:
        return None, leaves
    kept, ignored = [], []
    for leaf, verdict in verdicts:
        if verdict == "ignored" and not leaf.cosmetic and _copies(leaf, actionable):
            verdict = "companion"  # e.g. tags_all.env moving exactly as the configured tags.env did
        (ignored if verdict == "ignored" else kept).append(leaf)
    return kept, ignored


def _copies(leaf: _Leaf, actionable: list[_Leaf]) -> bool:
    """True when an actionable leaf of the same resource made the very same change (a derived copy)."""
    return any(
        leaf.path[-1] == other.path[-1]
        and _same(leaf.before, other.before)
        and _same(leaf.after, other.after)
        for other in actionable
    )


def _judge(entry: _Entry, leaf: _Leaf, node: Node | None, context: _Context) -> str:
    """"actionable" (makes a finding), "companion" (listed in a finding, never one alone: a computed-only
    value such as a `version` that follows a real change) or "ignored" (evidence; _copies may still list
    it when it repeats an actionable change, as `tags_all.env` repeats `tags.env`)."""
    if leaf.cosmetic:
        return "ignored"
    expressions = context.expressions(entry)
    if expressions is None and node is None:
        return "actionable"  # nothing to judge by: every difference counts, as before
    if expressions is not None and _configured(expressions, leaf.path):
        return "actionable"
    if (entry.address, leaf.path[0]) in context.relevant:
        return "actionable"  # other resources' configuration refers to it
    if node is not None and expressions is not None and _in_unwritten_block(node, expressions, leaf.path):
        # A nested block the configuration does not write: the schema cannot say whether the provider
        # computes it (SDK blocks often are), and in the estate seen so far it is a mirror of a separate
        # resource (a bucket's lifecycle_rule, versioning, encryption).
        return "ignored"
    attribute = _attribute_node(node, leaf.path) if node is not None else None
    if attribute is None:
        return "ignored"  # not set by the configuration, nothing known about it: a copy at most
    if attribute.enforced:
        return "ignored" if _zero_flip(leaf) else "actionable"
    if attribute.computed and not attribute.optional:
        return "companion"
    return "ignored"  # optional and computed, not set here: mirrors another resource or a default


def _settle_key(path: tuple[str, ...]) -> tuple[str, ...]:
    """A path cut before its first list/set index: set elements have different indexes on both sides."""
    for position, step in enumerate(path):
        if step.isdigit():
            return path[:position]
    return path


def _touches(key: tuple[str, ...], touched: list[tuple[str, ...]]) -> bool:
    return any(key[: len(other)] == other or other[: len(key)] == key for other in touched)


def _in_place(leaf: _Leaf, change: Mapping[str, Any]) -> bool:
    """True when the object holding the leaf is there on both sides of the change (null read back as
    false inside an encryption rule that stayed), not when it came or went as a whole (a new rule's
    `self = false` belongs to the rule)."""
    parent = leaf.path[:-1]
    return (not leaf.whole and isinstance(_lookup(change.get("before"), parent), dict)
            and isinstance(_lookup(change.get("after"), parent), dict))


def _zero_flip(leaf: _Leaf) -> bool:
    """null against false/0/"": the same to SDK-based providers, which store an unset value as zero."""
    values = (leaf.before, leaf.after)
    zero = any(v is False or v == 0 or v == "" for v in values if v is not None)
    return zero and any(v is None for v in values)


def _configured(expressions: Mapping[str, Any], path: tuple[str, ...]) -> bool:
    """True when the configuration sets the attribute at `path` (or the nested block holding it)."""
    expression: Any = expressions.get(path[0])
    rest = path[1:]
    while True:
        if expression is None:
            return False
        if isinstance(expression, dict) and _is_expression(expression):
            return True  # an attribute: everything below it is what the configuration says
        if isinstance(expression, dict):
            blocks: list[Any] = [expression]  # a single nested block
        elif isinstance(expression, list):
            blocks = expression
        else:
            return True
        if rest and rest[0].isdigit():
            rest = rest[1:]
        if not rest:
            return True
        name, rest = rest[0], rest[1:]
        expression = next((b[name] for b in blocks if isinstance(b, dict) and name in b), None)


def _is_expression(value: Mapping[str, Any]) -> bool:
    return not value or "constant_value" in value or "references" in value


def _in_unwritten_block(node: Node, expressions: Mapping[str, Any], path: tuple[str, ...]) -> bool:
    """True when `path` lies in a nested block that the configuration does not write."""
    current: Node | None = node
    for depth, step in enumerate(path, 1):
        current = current.child(step) if current is not None else None
        if current is None:
            return False
        if current.block and not _configured(expressions, path[:depth]):
            return True
    return False


def _attribute_node(node: Node, path: tuple[str, ...]) -> Node | None:
    """The deepest attribute or block along `path` (map keys and indexes belong to their attribute)."""
    found: Node | None = None
    current: Node | None = node
    for step in path:
        current = current.child(step) if current is not None else None
        if current is None:
            break
        if current.required or current.optional or current.computed:
            found = current
    return found


def _evidence(kind: str, address: str, leaves: list[_Leaf], context: _Context) -> list[Evidence]:
    out = []
    for reason, chosen in (("json-formatting", [lf for lf in leaves if lf.cosmetic]),
                           ("not-managed-here", [lf for lf in leaves if not lf.cosmetic])):
        if chosen:
            out.append(Evidence(kind, address, reason, tuple(context.render(leaf) for leaf in chosen)))
    return out


def _pending_finding(
    entry: _Entry,
    drift: _Entry | None,
    drift_findings: Mapping[str, Finding],
    context: _Context,
    evidence: list[Evidence],
    consequences: dict[str, list[Consequence]],
) -> Finding | None:
    change = _change_type(entry.actions)
    if change is None:
        return None
    leaves = context.planned_leaves(entry)
    cosmetic = [leaf for leaf in leaves if leaf.cosmetic]
    if cosmetic:
        evidence.extend(_evidence("pending-change", entry.address, cosmetic, context))
        leaves = [leaf for leaf in leaves if not leaf.cosmetic]

    if drift is not None:
        applied = drift.change.get("before")
        leaves = [leaf for leaf in leaves if leaf.unknown or not _reverts(leaf, applied)]
        if all(leaf.unknown for leaf in leaves):
            # applying would only undo the drift already reported; a re-creation is worth saying so, and
            # so are values that change because they refer to a drifted resource
            if change != "update" and entry.address in drift_findings:
                consequences.setdefault(entry.address, []).append(Consequence(entry.address, change))
            elif leaves and change in ("update", "replace"):
                _without_consequences(entry, change, leaves, drift_findings, context, consequences)
            return None
    elif change == "update" and not leaves:
        return None  # Terraform plans an update for noise only

    if change in ("update", "replace") and drift_findings:
        leaves = _without_consequences(entry, change, leaves, drift_findings, context, consequences)
        if not leaves:
            return None

    if change in ("create", "delete"):
        attributes: tuple[AttributeChange, ...] = ()
    elif change == "replace":
        causes = _replace_paths(entry.change)
        attributes = tuple(
            context.render(leaf) for leaf in leaves if not leaf.unknown or _caused(leaf.path, causes))
    else:  # a computed attribute that had no value and will get one is not news
        attributes = tuple(
            context.render(leaf) for leaf in leaves if not (leaf.unknown and _is_empty(leaf.before)))
    return _finding("pending-change", entry, change, attributes, context, reality=("before", "after"))


def _without_consequences(
    entry: _Entry,
    change: str,
    leaves: list[_Leaf],
    drift_findings: Mapping[str, Finding],
    context: _Context,
    consequences: dict[str, list[Consequence]],
) -> list[_Leaf]:
    """Leaves that are not a consequence of drift elsewhere; the others are credited to that drift.

    A planned value that is unknown because the configuration refers to a drifted resource (a queue's
    redrive policy naming a dead-letter queue deleted out of band, to be re-created) is what re-applying
    the code does to undo that drift, not a code change.
    """
    expressions = context.expressions(entry)
    if expressions is None:
        return leaves
    by_config: dict[str, str] = {}
    for address, finding in drift_findings.items():
        by_config.setdefault(context.config_address_of(address), finding.address)
    module = _INSTANCE_KEY.sub("", entry.module) if entry.module else None
    remaining: list[_Leaf] = []
    credited: dict[str, list[str]] = {}
    for leaf in leaves:
        target = None
        if leaf.unknown:
            for reference in _references(expressions.get(leaf.path[0])):
                resource = _referenced_resource(reference, module)
                if resource is not None and resource in by_config:
                    target = by_config[resource]
                    break
        if target is None:
            remaining.append(leaf)
        else:
            credited.setdefault(target, []).append(".".join(leaf.path))
    if credited and change == "update" and all(leaf.unknown and _is_empty(leaf.before) for leaf in remaining):
        remaining = []  # what is left are computed values to be filled in, nothing the code changed
    for target, paths in credited.items():
        consequences.setdefault(target, []).append(
            Consequence(entry.address, change, tuple(context.mask_text(path) for path in paths)))
    return remaining


def _references(expression: Any) -> Iterator[str]:
    if isinstance(expression, dict):
        for key, value in expression.items():
            if key == "references" and isinstance(value, list):
                yield from (ref for ref in value if isinstance(ref, str))
            else:
                yield from _references(value)
    elif isinstance(expression, list):
        for item in expression:
            yield from _references(item)


def _referenced_resource(reference: str, module: str | None) -> str | None:
    """`aws_sqs_queue.dlq.arn` in module M -> `M.aws_sqs_queue.dlq`; None for variables, locals..."""
    steps = _INSTANCE_KEY.sub("", reference).split(".")
    if len(steps) < 2 or steps[0] in _NOT_RESOURCE_REFERENCES:
        return None
    local = f"{steps[0]}.{steps[1]}"
    return f"{module}.{local}" if module else local


def _reverts(leaf: _Leaf, applied: Any) -> bool:
    """True when the planned value is the last applied one, i.e. the plan undoes drift at this leaf."""
    planned_value, applied_value = leaf.after, _lookup(applied, leaf.path)
    return _same(planned_value, applied_value) or _json_same(planned_value, applied_value)


def _finding(
    kind: str,
    entry: _Entry,
    change: str,
    attributes: tuple[AttributeChange, ...],
    context: _Context,
    reality: tuple[str, str],
) -> Finding:
    """`reality` names the side of the change that describes the object as it exists now."""
    provider_id = _provider_id(entry.change, reality)
    return Finding(
        kind=kind,
        address=entry.address,
        module=entry.module,
        type=entry.type,
        name=entry.name,
        provider_id=None if provider_id is None or context.is_secret(provider_id) else provider_id,
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
        if not (self.before_sensitive or self.after_sensitive or self.after_unknown):
            return _NO_MARKS  # nothing marked below: most of a plan
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
    cosmetic: bool = False  # the same JSON document written differently
    whole: bool = False  # part of a set element that was added or removed as a whole


def _diff(
    before: Any, after: Any, marks: _Marks, path: tuple[str, ...], node: Node | None = None,
) -> Iterator[_Leaf]:
    """Changed leaves of before -> after, noise ignored. Raw values: mask them with _Context.render().

    `node` is the provider schema at this path, when known: sets are then compared by value (_set_diff).
    """
    if marks.after_unknown is True:
        yield _Leaf(path, before, _MISSING, marks, unknown=True)
        return
    if before == after and type(before) is type(after):
        return  # identical subtree: the common case, compared at C speed
    if node is not None and node.is_set and not _any_true(marks.after_unknown):
        if _container_or_empty(before, list) and _container_or_empty(after, list):
            yield from _set_diff(before or [], after or [], marks, path, node.element)
            return
    unknown = marks.after_unknown
    if type(before) is dict and type(after) is dict:
        # the common case (two objects), walked in place: building (key, before, after) lists for every
        # object of a 10,000-resource plan costs more than the comparisons
        for key, b in before.items():
            a = after.get(key)
            if b == a and type(b) is type(a) and not (unknown and _child(unknown, key)):
                continue
            child = node.child(key) if node is not None else None
            yield from _diff(b, a, marks.child(key), (*path, key), child)
        for key, a in after.items():
            if key in before or (a is None and not (unknown and _child(unknown, key))):
                continue
            child = node.child(key) if node is not None else None
            yield from _diff(None, a, marks.child(key), (*path, key), child)
        return
    children = _children(before, after)
    if children is None:
        if _same(before, after):
            return
        cosmetic = type(before) is str and type(after) is str and _json_same(before, after)
        yield _Leaf(path, before, after, marks, False, cosmetic)
        return
    for key, b, a in children:
        # skip identical children before building their marks: most of a resource did not change
        if b == a and type(b) is type(a) and not (unknown and _child(unknown, key)):
            continue
        child = node.child(str(key)) if node is not None else None
        yield from _diff(b, a, marks.child(key), (*path, str(key)), child)


def _set_diff(
    before: list[Any], after: list[Any], marks: _Marks, path: tuple[str, ...], element: Node | None,
) -> Iterator[_Leaf]:
    """A set compared by value: the leaves of each removed element (at its index before, values -> null),
    then of each added one (at its index after). An element that changed is one removed and one added:
    a set has no identity for its elements other than their value."""
    before_keys = [_element_key(item) for item in before]
    after_keys = [_element_key(item) for item in after]
    unmatched = Counter(after_keys)
    removed = []
    for index, key in enumerate(before_keys):
        if unmatched[key] > 0:
            unmatched[key] -= 1
        else:
            removed.append(index)
    unmatched = Counter(before_keys)
    added = []
    for index, key in enumerate(after_keys):
        if unmatched[key] > 0:
            unmatched[key] -= 1
        else:
            added.append(index)
    # An element whose only differences are null against false/0 ("bucket_key_enabled" read back as
    # false) is the same element: diff it in place, so the leaf can be judged as the flip it is.
    for index in list(removed):
        partner = next((other for other in added if _only_zero_flips(before[index], after[other])), None)
        if partner is not None:
            removed.remove(index)
            added.remove(partner)
            yield from _diff(before[index], after[partner], marks.child(index), (*path, str(index)), element)
    # One element went and one came: the element changed (a bucket's only encryption rule switched from
    # AES256 to aws:kms). Diffed in place it names the attribute that changed, and a plan that puts it
    # back reads as the revert it is, not as one element dropped and another added.
    if len(removed) == 1 and len(added) == 1:
        index, other = removed.pop(), added.pop()
        changed = _Marks(_child(marks.before_sensitive, index), _child(marks.after_sensitive, other),
                         _child(marks.after_unknown, other))
        yield from _diff(before[index], after[other], changed, (*path, str(index)), element)
    for index in removed:
        gone = _Marks(_child(marks.before_sensitive, index), None, None)
        for leaf in _diff(before[index], None, gone, (*path, str(index)), element):
            yield replace(leaf, whole=True)
    for index in added:
        new = _Marks(None, _child(marks.after_sensitive, index), _child(marks.after_unknown, index))
        for leaf in _diff(None, after[index], new, (*path, str(index)), element):
            yield replace(leaf, whole=True)


def _only_zero_flips(before: Any, after: Any) -> bool:
    return all(_zero_flip(leaf) for leaf in _diff(before, after, _NO_MARKS, ()))


def _element_key(value: Any) -> str:
    return json.dumps(_canonical(value), sort_keys=True, default=str)


def _canonical(value: Any) -> Any:
    """The value with noise (null, "", [], {}) dropped, so `description: null` equals `description: ""`."""
    if isinstance(value, dict):
        kept = {key: _canonical(item) for key, item in value.items()}
        return {key: item for key, item in kept.items() if not _is_empty(item)}
    if isinstance(value, list):
        return [_canonical(item) for item in value]
    return value


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


def _render_marks(leaf: _Leaf) -> AttributeChange:
    """Mask a raw leaf by its sensitive marks: sensitive on either side hides both values."""
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
        items: Any = mark.values()
    elif isinstance(mark, list):
        items = mark
    else:
        return False
    if not any(items):
        return False  # the common case, all {}, [] and false, decided at C speed
    for item in items:
        if item is True or (item and _any_true(item)):
            return True
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


def _json_same(a: Any, b: Any) -> bool:
    """Two strings holding the same JSON document (whitespace, key order): e.g. a policy as the provider
    read it back and as `jsonencode` writes it."""
    if not (isinstance(a, str) and isinstance(b, str)):
        return False
    a_text, b_text = a.lstrip(), b.lstrip()
    if not (a_text[:1] in ("{", "[") and b_text[:1] == a_text[:1]):
        return False
    try:
        return bool(json.loads(a_text) == json.loads(b_text))
    except (ValueError, RecursionError):
        return False


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


# --- context: configuration, relevant attributes, schemas, secrets ------------------------------------------


class _Context:
    """What the parser knows about the plan beyond one entry; built once per plan."""

    def __init__(
        self,
        config: dict[str, Mapping[str, Any]],
        relevant: set[tuple[str, str]],
        schemas: ProviderSchemas | None,
        secrets: set[str],
        has_changes: bool,
    ) -> None:
        self.config = config
        self.relevant = relevant
        self.schemas = schemas
        self.has_changes = has_changes
        self.secrets = frozenset(secrets)
        self.numeric = frozenset(s for s in secrets if _NUMBER.fullmatch(s))
        # longest first, so a secret that contains another is masked whole; JSON-escaped forms as well
        fragments = {s for s in secrets if len(s) >= _MIN_SECRET_SUBSTRING}
        fragments |= {json.dumps(s)[1:-1] for s in fragments}
        self.fragments = sorted(fragments, key=len, reverse=True)
        self._planned: dict[int, list[_Leaf]] = {}
        self._config_addresses: dict[str, str] = {}

    @classmethod
    def of(
        cls,
        plan: Mapping[str, Any],
        schemas: ProviderSchemas | None,
        drift_entries: list[_Entry],
        change_entries: list[_Entry],
    ) -> _Context:
        configuration = plan.get("configuration")
        config: dict[str, Mapping[str, Any]] = {}
        if isinstance(configuration, dict):
            _index_module(configuration.get("root_module"), "", config)
        relevant = set()
        for item in plan.get("relevant_attributes") or ():
            if isinstance(item, dict) and isinstance(item.get("resource"), str) and item.get("attribute"):
                relevant.add((item["resource"], str(item["attribute"][0])))
        secrets = _plan_secrets(plan, configuration, schemas, drift_entries, change_entries)
        return cls(config, relevant, schemas, secrets, has_changes="resource_changes" in plan)

    def node(self, entry: _Entry) -> Node | None:
        return self.schemas.resource(entry.provider, entry.type) if self.schemas is not None else None

    def expressions(self, entry: _Entry) -> Mapping[str, Any] | None:
        if not self.config:
            return None
        return self.config.get(entry.config_address)

    def config_address_of(self, address: str) -> str:
        """Instance address -> configuration address (module and resource keys dropped)."""
        known = self._config_addresses.get(address)
        if known is None:
            known = self._config_addresses[address] = _INSTANCE_KEY.sub("", address)
        return known

    def planned_leaves(self, entry: _Entry) -> list[_Leaf]:
        """The leaves of a resource_changes entry, computed once (drift and pending changes both ask)."""
        leaves = self._planned.get(id(entry))
        if leaves is None:
            change = entry.change
            before, after = change.get("before"), change.get("after")
            leaves = list(_diff(before, after, _marks(change), (), self.node(entry)))
            self._planned[id(entry)] = leaves
        return leaves

    # masking

    def render(self, leaf: _Leaf) -> AttributeChange:
        rendered = _render_marks(leaf)
        if not self.secrets:
            return rendered
        path = self.mask_text(rendered.path)
        before, after = self.mask(rendered.before), self.mask(rendered.after)
        if path is rendered.path and before is rendered.before and after is rendered.after:
            return rendered  # the common case: nothing secret in this leaf
        return AttributeChange(path, before, after)

    def is_secret(self, value: str) -> bool:
        return bool(self.secrets) and self.mask(value) != value

    def mask(self, value: Any) -> Any:
        """`value` with every sensitive value of the plan masked, whole or inside maps, lists and text."""
        if not self.secrets or value is None or isinstance(value, bool):
            return value
        if isinstance(value, str):
            return self.mask_text(value)
        if isinstance(value, int | float):
            return SENSITIVE if self.numeric and str(value) in self.numeric else value
        if isinstance(value, dict):
            return {self.mask_text(str(key)): self.mask(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.mask(item) for item in value]
        return value

    def mask_text(self, text: str) -> str:
        if not self.secrets or text in (SENSITIVE, UNKNOWN):
            return text
        if text in self.secrets:
            return SENSITIVE
        for fragment in self.fragments:
            if fragment in text:
                text = text.replace(fragment, SENSITIVE)
        return text


def _index_module(module: Any, prefix: str, out: dict[str, Mapping[str, Any]]) -> None:
    """Configuration address -> expressions of every resource in `module` and the modules it calls."""
    if not isinstance(module, dict):
        return
    for resource in module.get("resources") or ():
        if isinstance(resource, dict) and isinstance(resource.get("address"), str):
            expressions = resource.get("expressions")
            out[prefix + resource["address"]] = expressions if isinstance(expressions, dict) else {}
    for name, call in (module.get("module_calls") or {}).items():
        if isinstance(call, dict):
            _index_module(call.get("module"), f"{prefix}module.{name}.", out)


def _plan_secrets(
    plan: Mapping[str, Any],
    configuration: Any,
    schemas: ProviderSchemas | None,
    drift_entries: list[_Entry],
    change_entries: list[_Entry],
) -> set[str]:
    """Every value the plan calls sensitive anywhere: sensitive root variables, values under a
    before_sensitive/after_sensitive mark, sensitive outputs and attributes the provider schema marks
    sensitive. Terraform marks `tags.Secret` but not `tags_all.Secret`: the value, not the path, is secret."""
    secrets: set[str] = set()
    declared: Any = {}
    if isinstance(configuration, dict) and isinstance(configuration.get("root_module"), dict):
        declared = configuration["root_module"].get("variables") or {}
    variables = plan.get("variables")
    if isinstance(variables, dict) and isinstance(declared, dict):
        for name, declaration in declared.items():
            given = variables.get(name)
            if isinstance(declaration, dict) and declaration.get("sensitive") and isinstance(given, dict):
                _collect(given.get("value"), True, secrets)
    for entry in (*drift_entries, *change_entries):
        change = entry.change
        for side, mark in (("before", "before_sensitive"), ("after", "after_sensitive")):
            marks = change.get(mark)
            if marks and _any_true(marks):  # usually {} or a tree of empty marks: nothing to walk
                _collect(change.get(side), marks, secrets)
        if schemas is not None:
            node = schemas.resource(entry.provider, entry.type)
            if node is not None and node.secret_inside:
                for side in ("before", "after"):
                    _collect_by_schema(change.get(side), node, secrets)
    outputs = plan.get("output_changes")
    if isinstance(outputs, dict):
        for output in outputs.values():
            if isinstance(output, dict):
                for side, mark in (("before", "before_sensitive"), ("after", "after_sensitive")):
                    if output.get(mark):
                        _collect(output.get(side), output.get(mark), secrets)
    secrets.discard("")
    return secrets


def _collect(value: Any, mark: Any, out: set[str]) -> None:
    """Add the scalar values of `value` that `mark` covers (`true` covers a whole subtree)."""
    if mark is True:
        if isinstance(value, dict):
            for item in value.values():
                _collect(item, True, out)
        elif isinstance(value, list):
            for item in value:
                _collect(item, True, out)
        elif isinstance(value, str | int | float) and not isinstance(value, bool):
            out.add(str(value))
        return
    if isinstance(value, dict) and isinstance(mark, dict):
        for key, item in value.items():
            if key in mark:
                _collect(item, mark[key], out)
    elif isinstance(value, list) and isinstance(mark, list):
        for item, item_mark in zip(value, mark, strict=False):
            _collect(item, item_mark, out)


def _collect_by_schema(value: Any, node: Node, out: set[str]) -> None:
    if node.sensitive:
        _collect(value, True, out)
    elif node.secret_inside:
        if isinstance(value, dict):
            for key, item in value.items():
                child = node.child(key)
                if child is not None:
                    _collect_by_schema(item, child, out)
        elif isinstance(value, list) and node.element is not None:
            for item in value:
                _collect_by_schema(item, node.element, out)
