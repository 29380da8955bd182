"""Framework requirements and check -> requirement mappings, read from the scanners' own files. Pure.

Two sources, and only these (see ../shared/corpora/compliance-mapping/README.md):

* Prowler's compliance files (prowler/compliance/<provider>/<name>.json in the Prowler package, or
  the trimmed copies with the same keys): `Framework`, `Version`, `Provider`, `Requirements[]` with
  `Id`, `Name`/`Description`, `Checks` (Prowler check ids) and `Attributes` (Section or Category,
  AssessmentStatus). A requirement without checks, or marked `Manual`, is assessed manually.
* Checkov's own references: the JSON of check ids -> `nist_800_53_r5` control ids found in the
  docstrings of Checkov's check classes, with the source file of each (format of
  checkov-3.3.30-source-framework-refs.json). Each mapping cites the Checkov file it was read from.

Nothing here invents a mapping: Checkov checks without a reference stay unmapped.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dispatcher.compliance.frameworks import normalize
from dispatcher.errors import UsageError

TITLE_CHARS = 200
_NIST = re.compile(r"^NIST\.800-53\.r5 ([A-Z]{2}-\d+(?:\(\d+\))?)$")


class MappingFileError(UsageError):  # a file the operator named: bad input, exit 2
    """A framework file that is not in the expected format."""


@dataclass
class Framework:
    source_name: str
    framework: str
    version: str
    provider: str
    requirements: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> list[dict[str, Any]]:
        return self.requirements


def read_prowler(path: Path) -> Framework:
    doc = _load(path)
    try:
        name = path.name.removesuffix(".json").removesuffix(".trimmed")
        framework = Framework(source_name=f"prowler:{name}", framework=normalize(doc["Framework"]),
                              version=str(doc.get("Version") or ""), provider=str(doc["Provider"]).lower())
        for requirement in doc["Requirements"]:
            attributes = (requirement.get("Attributes") or [{}])[0] or {}
            checks = sorted(set(requirement.get("Checks") or []))
            manual = not checks or str(attributes.get("AssessmentStatus", "")).lower() == "manual"
            framework.requirements.append({
                "requirement": str(requirement["Id"]),
                "title": _title(requirement.get("Name") or requirement.get("Description")),
                "section": attributes.get("Section") or attributes.get("Category"),
                "assessment": "manual" if manual else "automated",
                "mappings": [{"scanner": "prowler", "check_id": check,
                              "source": f"Prowler compliance file {name}.json", "judgement": False}
                             for check in checks],
            })
    except (KeyError, TypeError, IndexError) as exc:
        raise MappingFileError(f"{path}: not a Prowler compliance file (missing {exc})") from None
    return framework


def read_checkov_refs(path: Path) -> Framework:
    doc = _load(path)
    try:
        version = str(doc["checkov_version"])
        by_control: dict[str, list[dict[str, Any]]] = {}
        for check_id, entry in sorted(doc["checks"].items()):
            source = f"checkov {version} source: {', '.join(entry['source_files'])}"
            for ref in entry.get("nist_800_53_r5") or []:
                match = _NIST.match(ref)
                if match is None:
                    raise MappingFileError(f"{path}: {check_id}: unrecognised NIST reference {ref!r}")
                by_control.setdefault(match.group(1), []).append(
                    {"scanner": "checkov", "check_id": check_id, "source": source, "judgement": False})
    except (KeyError, TypeError, AttributeError) as exc:
        raise MappingFileError(f"{path}: not a Checkov references file (missing {exc})") from None
    framework = Framework(source_name=f"checkov:{version}:nist_800_53_r5", framework="NIST80053",
                          version="rev5", provider="aws")
    for control, mappings in sorted(by_control.items()):
        framework.requirements.append({"requirement": control, "title": None, "section": control[:2],
                                       "assessment": "automated", "mappings": mappings})
    return framework


def read_any(path: Path) -> Framework:
    """A Prowler compliance file or a Checkov references file, told apart by their keys."""
    doc = _load(path)
    if isinstance(doc, dict) and "Requirements" in doc:
        return read_prowler(path)
    if isinstance(doc, dict) and "checkov_version" in doc:
        return read_checkov_refs(path)
    raise MappingFileError(f"{path}: neither a Prowler compliance file nor a Checkov references file")


def _load(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes())
    except OSError as exc:
        raise MappingFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise MappingFileError(f"{path}: not JSON ({exc})") from None


def _title(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    return value if len(value) <= TITLE_CHARS else value[: TITLE_CHARS - 1] + "…"
