"""Drift detection: reading Terraform/OpenTofu plans into findings."""

from __future__ import annotations

from dispatcher.drift.plan import AttributeChange, Finding, PlanError, parse_plan

__all__ = ["AttributeChange", "Finding", "PlanError", "parse_plan"]
