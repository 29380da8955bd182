"""Framework names an integration may enable, and the framework files that describe them.

`cloud_integrations.frameworks` holds names such as `CIS`, `SOC2`, `ISO27001`. They are compared after
upper-casing and dropping everything but letters and digits (`iso-27001` is ISO27001). An unknown name
is an error of the scan, never silently ignored: a typo must not look like a clean posture.

PROWLER_FILES names, per framework and provider, the compliance file of the pinned Prowler
(prowler/compliance/<provider>/<name>.json) that `--compliance` takes and that
`nightshift frameworks load` reads requirements and check mappings from, with the key Prowler's OCSF
output uses for it in `unmapped.compliance`. Only files verified in Prowler 5.46.0 are listed (the AWS
ones in ../shared/corpora/compliance-mapping/; the Azure and GCP ones read from the installed package:
their `Framework` and `Version` give the key).
"""

from __future__ import annotations

import re

PROWLER_FILES: dict[str, dict[str, tuple[str, str]]] = {
    # Azure and GCP: the newest CIS benchmark the pinned Prowler ships for each
    "CIS": {"aws": ("cis_3.0_aws", "CIS-3.0"), "azure": ("cis_6.0_azure", "CIS-6.0"),
            "gcp": ("cis_5.0_gcp", "CIS-5.0")},
    "SOC2": {"aws": ("soc2_aws", "SOC2"), "azure": ("soc2_azure", "SOC2"), "gcp": ("soc2_gcp", "SOC2")},
    "ISO27001": {"aws": ("iso27001_2022_aws", "ISO27001-2022"),
                 "azure": ("iso27001_2022_azure", "ISO27001-2022"),
                 "gcp": ("iso27001_2022_gcp", "ISO27001-2022")},
}
# Checkov's own source names NIST SP 800-53 rev5 controls for some AWS checks
CHECKOV_FRAMEWORKS = ("NIST80053",)
KNOWN = tuple(sorted({*PROWLER_FILES, *CHECKOV_FRAMEWORKS}))
PROVIDERS = ("aws", "azure", "gcp")


def normalize(name: str) -> str:
    return re.sub(r"[^A-Z0-9]", "", name.upper())


def check_frameworks(names: list[str]) -> list[str]:
    """The normalized names; ValueError naming the unknown ones and the known ones."""
    normalized = [normalize(name) for name in names]
    unknown = [name for name, norm in zip(names, normalized, strict=True) if norm not in KNOWN]
    if unknown:
        raise ValueError(f"unknown framework {', '.join(map(repr, unknown))}; known: {', '.join(KNOWN)}")
    return sorted(set(normalized))
