"""Rightsizing of AWS virtual machines: CloudWatch CPU over the lookback, the instance type catalog,
and the billed hourly rate.

For each instance the bill shows (nightshift.cost_compute_instances), the smallest type of the same
family whose vCPUs keep the observed *peak* CPU under the threshold is recommended, when it is smaller
than the billed type. The saving assumes the family's price scales with vCPUs (true of AWS's on-demand
prices within a family) and is computed from the billed rate, so discounts already earned carry over.
Memory is not measured (CloudWatch has no memory metric without the agent): a limit said in the evidence.
Where data is missing (no instance id, no datapoints, too few days, unknown type) nothing is recommended
and the reason is returned instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

HOURS_PER_MONTH = Decimal("730.5")  # 24 * 30.4375
MIN_DAYS = 7  # fewer days of CPU data than this are not enough to shrink a machine
_INSTANCE_ID = re.compile(r"(?:^|/)(i-[0-9a-f]{8,17})$")


@dataclass(frozen=True)
class Instance:
    resource_id: str
    instance_type: str
    region: str | None
    hourly_rate: Decimal
    currency: str
    hours: Decimal


@dataclass
class Outcome:
    recommendations: list[dict[str, Any]] = field(default_factory=list)
    missing: list[dict[str, str]] = field(default_factory=list)  # {resource_id, reason}


def instance_id(resource_id: str) -> str | None:
    match = _INSTANCE_ID.search(resource_id)
    return match.group(1) if match else None


def cpu_stats(cloudwatch: Any, instance: str, start: datetime,
              end: datetime) -> tuple[float, float, float] | None:
    """(average, peak, days covered) of CPUUtilization, hourly; None without datapoints."""
    points = cloudwatch.get_metric_statistics(
        Namespace="AWS/EC2", MetricName="CPUUtilization",
        Dimensions=[{"Name": "InstanceId", "Value": instance}],
        StartTime=start, EndTime=end, Period=3600, Statistics=["Average", "Maximum"],
    ).get("Datapoints", [])
    if not points:
        return None
    stamps = sorted(p["Timestamp"] for p in points)
    days = (stamps[-1] - stamps[0]).total_seconds() / 86400 + 1 / 24
    average = sum(p["Average"] for p in points) / len(points)
    return average, max(p["Maximum"] for p in points), days


def family_vcpus(ec2: Any, family: str) -> dict[str, int]:
    """vCPUs of every instance type of a family (m6i -> {m6i.large: 2, ...}) from describe_instance_types."""
    sizes: dict[str, int] = {}
    for page in ec2.get_paginator("describe_instance_types").paginate(
            Filters=[{"Name": "instance-type", "Values": [f"{family}.*"]}]):
        for item in page.get("InstanceTypes", []):
            name = item["InstanceType"]
            if name.split(".", 1)[0] == family:
                sizes[name] = int(item["VCpuInfo"]["DefaultVCpus"])
    return sizes


def recommend(instances: list[Instance], *, start: datetime, end: datetime,
              clients: Callable[[str, str | None], Any], threshold: float = 80.0) -> Outcome:
    outcome = Outcome()
    catalogs: dict[tuple[str | None, str], dict[str, int]] = {}
    for inst in instances:
        def missing(reason: str, inst: Instance = inst) -> None:
            outcome.missing.append({"resource_id": inst.resource_id, "instance_type": inst.instance_type,
                                    "reason": reason})

        ident = instance_id(inst.resource_id)
        if ident is None:
            missing("the billed resource id is not an EC2 instance id: no CloudWatch metrics to read")
            continue
        stats = cpu_stats(clients("cloudwatch", inst.region), ident, start, end)
        if stats is None:
            missing(f"no CPUUtilization datapoints in CloudWatch for {ident} from {start:%Y-%m-%d} "
                    f"to {end:%Y-%m-%d}")
            continue
        average, peak, days = stats
        if days < MIN_DAYS:
            missing(f"only {days:.1f} days of CPU data for {ident} (at least {MIN_DAYS} needed)")
            continue
        family = inst.instance_type.split(".", 1)[0]
        key = (inst.region, family)
        if key not in catalogs:
            catalogs[key] = family_vcpus(clients("ec2", inst.region), family)
        sizes = catalogs[key]
        current = sizes.get(inst.instance_type)
        if current is None:
            missing(f"instance type {inst.instance_type} is not in the EC2 catalog of {inst.region}")
            continue
        needed = current * peak / threshold
        fitting = sorted((v, name) for name, v in sizes.items() if v >= needed and v < current)
        if not fitting:
            continue
        vcpus, target = fitting[0]
        new_rate = inst.hourly_rate * vcpus / current
        saving = ((inst.hourly_rate - new_rate) * HOURS_PER_MONTH).quantize(Decimal("0.01"))
        outcome.recommendations.append({
            "resource_id": inst.resource_id, "instance_id": ident, "currency": inst.currency,
            "from_type": inst.instance_type, "to_type": target, "monthly_saving": saving,
            "evidence": {
                "cpu_average_percent": round(average, 2), "cpu_peak_percent": round(peak, 2),
                "days_of_metrics": round(days, 1), "threshold_percent": threshold,
                "vcpus": {"from": current, "to": vcpus}, "billed_hourly_rate": str(inst.hourly_rate),
                "estimated_hourly_rate": str(new_rate.quantize(Decimal("0.0000000001"))),
                "billed_hours": str(inst.hours),
                "assumption": "price scales with vCPUs within the family; memory not measured",
            },
        })
    return outcome


def default_clients() -> Callable[[str, str | None], Any]:
    import boto3

    cache: dict[tuple[str, str | None], Any] = {}

    def client(service: str, region: str | None) -> Any:
        if (service, region) not in cache:
            cache[(service, region)] = boto3.client(service, region_name=region)
        return cache[(service, region)]

    return client


def window(end: datetime, lookback_days: int) -> tuple[datetime, datetime]:
    return end - timedelta(days=lookback_days), end
