"""The agent registry: task kind -> Agent class.

Built-in agents live in the modules of BUILTIN_MODULES and register themselves with
`@register("slug")` (a module's Agent subclasses that carry a `name` are picked up too). Other
packages add agents through the entry-point group `nightshift.agents`, each entry point naming an
Agent subclass::

    [project.entry-points."nightshift.agents"]
    cost-review = "acme_agents.cost:CostReviewAgent"

Modules are imported on first use, so `nightshift --help` does not pay for Terraform parsing.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import TypeVar

from dispatcher.agents.base import Agent
from dispatcher.errors import NightshiftError

ENTRY_POINT_GROUP = "nightshift.agents"
BUILTIN_MODULES = (
    "dispatcher.agents.builtin",
    "dispatcher.agents.command",
    "dispatcher.agents.cost_analysis",
    "dispatcher.agents.drift_scan",
    "dispatcher.agents.compliance_scan",
    "dispatcher.agents.pr_review",
    "dispatcher.agents.drift_remediation",
)

log = logging.getLogger(__name__)
A = TypeVar("A", bound=type[Agent])
_registry: dict[str, type[Agent]] = {}
_loaded = False


class UnknownAgent(NightshiftError):
    """No agent is registered for a task kind."""


def register(name: str) -> Callable[[A], A]:
    """Class decorator: run tasks of kind `name` with this Agent subclass."""

    def decorate(cls: A) -> A:
        if not (inspect.isclass(cls) and issubclass(cls, Agent)):
            raise TypeError(f"{cls!r} is not an Agent subclass")
        existing = _registry.get(name)
        if existing is not None and existing is not cls:
            owner = f"{existing.__module__}.{existing.__name__}"
            raise ValueError(f"agent {name!r} is already registered by {owner}")
        cls.name = name
        _registry[name] = cls
        return cls

    return decorate


def known() -> dict[str, type[Agent]]:
    """Every registered agent by kind, built-ins and entry points loaded."""
    _load()
    return dict(sorted(_registry.items()))


def get(kind: str) -> type[Agent]:
    """The agent class for `kind`; UnknownAgent lists the kinds this dispatcher can run."""
    _load()
    try:
        return _registry[kind]
    except KeyError:
        names = ", ".join(sorted(_registry)) or "none"
        raise UnknownAgent(
            f"no agent for task kind {kind!r}; this dispatcher knows: {names} "
            f"(plug one in through the {ENTRY_POINT_GROUP!r} entry-point group)"
        ) from None


def _load() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module_name in BUILTIN_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:  # a dependency of a module that exists: a real error
                raise
            continue
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if (issubclass(obj, Agent) and obj is not Agent and not inspect.isabstract(obj)
                    and obj.__module__ == module_name and isinstance(getattr(obj, "name", None), str)
                    and obj.name not in _registry):
                _registry[obj.name] = obj
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        if entry_point.name in _registry:
            continue
        try:
            register(entry_point.name)(entry_point.load())
        except Exception:  # one broken plug-in must not take the dispatcher down
            log.exception("cannot load agent %r from entry point %s", entry_point.name, entry_point.value)
