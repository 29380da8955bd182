"""Provider schemas for the plan parser: which attributes are computed, sensitive, or sets.

`terraform providers schema -json` (OpenTofu writes the same document) describes every resource type
of every provider the configuration uses. The plan parser needs three facts from it, per attribute or
nested block, along a path such as ``ingress.0.cidr_blocks``:

* optional/computed/required: an attribute that is optional *and* computed and that the configuration
  does not set (a bucket's ``lifecycle_rule`` when an ``aws_s3_bucket_lifecycle_configuration`` manages
  it) mirrors something else; its drift is not drift of this resource;
* sensitive: its value is masked wherever it appears;
* set-like: a ``set`` type or a block with ``nesting_mode: set`` is compared by value, not by position.

The document is large (hashicorp/aws: tens of megabytes) and depends only on the provider version, so it
is fetched once per provider version and kept in a :class:`SchemaCache` directory, one file per provider
and version; parsed schemas stay in memory for the life of the process. How the drift-scan agent uses it,
after `init` in the pipeline's working directory, with `run_tool(argv) -> stdout bytes` running a
command there the way the agent runs every step::

    schemas = await schemas_for(SchemaCache(directory), tool, run_tool)   # SchemaError: go without
    findings = parse_plan(plan_json, schemas=schemas)

`schemas_for` runs `<tool> version -json` (which provider versions the lock file selected) and, only
for a provider version not cached yet, `<tool> providers schema -json`.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import tempfile
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dispatcher.errors import NightshiftError


class SchemaError(NightshiftError):
    """Provider schema JSON or `version -json` output that cannot be used; the message says why."""


@dataclass(eq=False)
class Node:
    """One attribute, nested block or collection element of a resource schema.

    ``attributes`` holds the named children of an object or block; ``element`` the shape of the
    elements of a list, set or map (blocks nested as list/set/map are collections of block objects).
    """

    required: bool = False
    optional: bool = False
    computed: bool = False
    sensitive: bool = False
    is_set: bool = False
    is_collection: bool = False
    block: bool = False  # a nested block (written `name { ... }`), not an attribute
    secret_inside: bool = False  # this node or one below it is sensitive
    attributes: dict[str, Node] = field(default_factory=dict)
    element: Node | None = None

    def child(self, step: str) -> Node | None:
        """The node one path step below: an attribute name, or a list/set index or map key."""
        if self.is_collection:
            return self.element
        return self.attributes.get(step)

    @property
    def enforced(self) -> bool:
        """Terraform sets this attribute to the configuration's value, null included (not computed)."""
        return self.required or (self.optional and not self.computed)


class ProviderSchemas:
    """Resource schemas of one or more providers, keyed by provider source address and resource type.

    Built from `terraform providers schema -json`; a resource type's tree is built on first use.
    """

    def __init__(self, providers: Mapping[str, Mapping[str, Any]]) -> None:
        self._raw = {_normal_source(source): dict(schema.get("resource_schemas") or {})
                     for source, schema in providers.items()}
        self._built: dict[tuple[str, str], Node | None] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_json(cls, data: bytes | str | Mapping[str, Any]) -> ProviderSchemas:
        document = _load_json(data, "provider schema")
        providers = document.get("provider_schemas")
        if not isinstance(providers, dict):
            raise SchemaError("not a provider schema: no provider_schemas object "
                              "(expected `terraform providers schema -json`)")
        return cls(providers)

    def resource(self, provider: str | None, resource_type: str) -> Node | None:
        """The schema of `resource_type` from `provider` (any provider when that one lacks it), or None."""
        source = _normal_source(provider) if provider else ""
        key = (source, resource_type)
        if key in self._built:
            return self._built[key]
        with self._lock:
            raw = self._raw.get(source, {}).get(resource_type)
            if raw is None:
                raw = next((types[resource_type] for types in self._raw.values() if resource_type in types),
                           None)
            node = _block(raw.get("block") or {}) if isinstance(raw, dict) else None
            if node is not None:
                _mark_secrets(node)
            self._built[key] = node
            return node

    def resource_types(self) -> int:
        return sum(len(types) for types in self._raw.values())


# --- building nodes from the schema JSON -----------------------------------------------------------------


def _block(block: Mapping[str, Any]) -> Node:
    node = Node()
    for name, attribute in (block.get("attributes") or {}).items():
        node.attributes[name] = _attribute(attribute)
    for name, nested in (block.get("block_types") or {}).items():
        node.attributes[name] = _nested_block(nested)
    return node


def _attribute(attribute: Mapping[str, Any]) -> Node:
    flags = {flag: bool(attribute.get(flag)) for flag in ("required", "optional", "computed", "sensitive")}
    nested = attribute.get("nested_type")
    if isinstance(nested, dict):  # plugin-framework nested attributes
        inner = _block({"attributes": nested.get("attributes") or {}})
        node = _nesting(str(nested.get("nesting_mode") or "single"), inner)
    else:
        node = _type(attribute.get("type"))
    node.required, node.optional, node.computed, node.sensitive = (
        flags["required"], flags["optional"], flags["computed"], flags["sensitive"])
    return node


def _nested_block(nested: Mapping[str, Any]) -> Node:
    node = _nesting(str(nested.get("nesting_mode") or "single"), _block(nested.get("block") or {}))
    # a block is configured by writing it; min_items says whether it must be
    node.optional = True
    node.required = int(nested.get("min_items") or 0) > 0
    node.block = True
    return node


def _mark_secrets(node: Node) -> bool:
    inside = [_mark_secrets(child) for child in node.attributes.values()]
    if node.element is not None:
        inside.append(_mark_secrets(node.element))
    node.secret_inside = node.sensitive or any(inside)
    return node.secret_inside


def _nesting(mode: str, inner: Node) -> Node:
    if mode in ("single", "group"):
        return inner
    return Node(is_collection=True, is_set=mode == "set", element=inner)


def _type(cty: Any) -> Node:
    """A node for a cty type: "string", ["list", T], ["set", T], ["map", T], ["object", {...}], ..."""
    if isinstance(cty, list) and len(cty) == 2:
        kind, inner = cty
        if kind in ("list", "set", "map"):
            return Node(is_collection=True, is_set=kind == "set", element=_type(inner))
        if kind == "object" and isinstance(inner, dict):
            return Node(attributes={name: _type(t) for name, t in inner.items()})
    return Node()  # primitives, tuples and "dynamic": nothing below to tell apart


# --- which provider versions a working directory uses -----------------------------------------------------


def provider_selections(version_json: bytes | str) -> dict[str, str]:
    """{provider source: version} from `terraform version -json` (or `tofu version -json`) run after init."""
    document = _load_json(version_json, "`version -json` output")
    selections = document.get("provider_selections")
    if not isinstance(selections, dict):
        raise SchemaError("`version -json` output has no provider_selections (run it after init)")
    return {_normal_source(str(source)): str(version) for source, version in selections.items()}


# --- the per-version cache ----------------------------------------------------------------------------------

_FILE_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
# parsed schemas by (source, version), shared by every SchemaCache of the process
_MEMORY: dict[tuple[str, str], Mapping[str, Any]] = {}
_MEMORY_LOCK = threading.Lock()


class SchemaCache:
    """Provider schemas on disk, one JSON file per provider source and version, read once per process."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def path(self, source: str, version: str) -> Path:
        name = _FILE_NAME_UNSAFE.sub("_", f"{_normal_source(source)}@{version}")
        return self.directory / f"{name}.json"

    def missing(self, selections: Mapping[str, str]) -> list[str]:
        """Providers of `selections` whose schema for that version is not cached yet."""
        return [source for source, version in selections.items()
                if (_normal_source(source), version) not in _MEMORY
                and not self.path(source, version).is_file()]

    def store(self, selections: Mapping[str, str], schema_json: bytes | str | Mapping[str, Any]) -> None:
        """Keep the resource schemas of each selected provider found in `providers schema -json` output."""
        document = _load_json(schema_json, "provider schema")
        providers = document.get("provider_schemas")
        if not isinstance(providers, dict):
            raise SchemaError("not a provider schema: no provider_schemas object")
        by_source = {_normal_source(source): schema for source, schema in providers.items()}
        self.directory.mkdir(parents=True, exist_ok=True)
        for source, version in selections.items():
            schema = by_source.get(_normal_source(source))
            if not isinstance(schema, dict):
                continue  # e.g. a provider only used by data sources in another root: nothing to keep
            kept = {"resource_schemas": schema.get("resource_schemas") or {}}
            _write_atomically(self.path(source, version), json.dumps(kept).encode())
            with _MEMORY_LOCK:
                _MEMORY[(_normal_source(source), version)] = kept

    def load(self, selections: Mapping[str, str]) -> ProviderSchemas:
        """The cached schemas of `selections` (a provider whose schema is not cached is left out)."""
        providers: dict[str, Mapping[str, Any]] = {}
        for source, version in selections.items():
            key = (_normal_source(source), version)
            with _MEMORY_LOCK:
                schema = _MEMORY.get(key)
            if schema is None:
                path = self.path(source, version)
                if not path.is_file():
                    continue
                try:
                    schema = _load_json(path.read_bytes(), f"cached schema {path.name}")
                except SchemaError:
                    path.unlink(missing_ok=True)  # a damaged file is fetched again next time
                    continue
                with _MEMORY_LOCK:
                    _MEMORY[key] = schema
            providers[key[0]] = schema
        return ProviderSchemas(providers)


async def schemas_for(
    cache: SchemaCache, tool: str, run_tool: Callable[[list[str]], Awaitable[bytes]],
) -> ProviderSchemas:
    """The provider schemas of an initialised working directory, fetched at most once per version.

    `run_tool(argv)` runs `argv` in that directory and returns its standard output (the agent's step
    runner: process group, deadline, capped output). The schema of hashicorp/aws is tens of megabytes,
    so allow it a large output cap; parsing it happens in a thread.
    """
    selections = provider_selections(await run_tool([tool, "version", "-json"]))
    if cache.missing(selections):
        document = await run_tool([tool, "providers", "schema", "-json"])
        await asyncio.to_thread(cache.store, selections, document)
    return await asyncio.to_thread(cache.load, selections)


def _write_atomically(path: Path, data: bytes) -> None:
    """Write to a temporary file and rename it: two dispatchers may fetch the same schema at once."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _normal_source(source: str) -> str:
    """`hashicorp/aws` and `registry.terraform.io/hashicorp/aws` name the same provider."""
    source = source.strip()
    return source if source.count("/") >= 2 else f"registry.terraform.io/{source}"


def _load_json(data: bytes | str | Mapping[str, Any], what: str) -> Mapping[str, Any]:
    if isinstance(data, Mapping):
        return data
    try:
        loaded = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SchemaError(f"{what} is not valid JSON: {exc}") from None
    if not isinstance(loaded, dict):
        raise SchemaError(f"{what} is not a JSON object")
    return loaded
