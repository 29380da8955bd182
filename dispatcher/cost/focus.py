"""The FOCUS columns Nightshift keeps, and how a file's header maps onto them.

FOCUS (FinOps Open Cost and Usage Specification) 1.0, 1.1 and 1.2 name their columns in PascalCase;
later versions add columns and 1.2 adds the Pricing/Invoice ones. A file is mapped by column name,
never by position: columns of another version are simply absent (NULL), provider columns `x_*` and
other non-standard columns (the official 1.0 sample has an `Id`) are kept in `extra`, and a file
without the columns the analyses cannot do without is refused with their names.
"""

from __future__ import annotations

from dataclasses import dataclass

from dispatcher.errors import UsageError

SUPPORTED_VERSIONS = ("1.0", "1.1", "1.2")


class FocusError(UsageError):  # a file or source the operator named: bad input, exit 2
    """A billing file that is not a FOCUS export this version of Nightshift can load."""


@dataclass(frozen=True)
class FocusColumn:
    name: str  # FOCUS name, e.g. BilledCost
    column: str  # cost_line_items column, e.g. billed_cost
    type: str  # numeric | timestamptz | text | jsonb
    since: str = "1.0"


def _col(name: str, column: str, type_: str = "text", since: str = "1.0") -> FocusColumn:
    return FocusColumn(name, column, type_, since)


# Order = the order of cost_line_items' columns (after source_id and ingest_id).
COLUMNS: tuple[FocusColumn, ...] = (
    _col("ChargePeriodStart", "charge_period_start", "timestamptz"),
    _col("ChargePeriodEnd", "charge_period_end", "timestamptz"),
    _col("BillingPeriodStart", "billing_period_start", "timestamptz"),
    _col("BillingPeriodEnd", "billing_period_end", "timestamptz"),
    _col("BillingCurrency", "billing_currency"),
    _col("BilledCost", "billed_cost", "numeric"),
    _col("EffectiveCost", "effective_cost", "numeric"),
    _col("ListCost", "list_cost", "numeric"),
    _col("ContractedCost", "contracted_cost", "numeric"),
    _col("ListUnitPrice", "list_unit_price", "numeric"),
    _col("ContractedUnitPrice", "contracted_unit_price", "numeric"),
    _col("ProviderName", "provider_name"),
    _col("PublisherName", "publisher_name"),
    _col("InvoiceIssuerName", "invoice_issuer_name"),
    _col("InvoiceId", "invoice_id", since="1.2"),
    _col("BillingAccountId", "billing_account_id"),
    _col("BillingAccountName", "billing_account_name"),
    _col("BillingAccountType", "billing_account_type", since="1.2"),
    _col("SubAccountId", "sub_account_id"),
    _col("SubAccountName", "sub_account_name"),
    _col("SubAccountType", "sub_account_type", since="1.2"),
    _col("ChargeCategory", "charge_category"),
    _col("ChargeClass", "charge_class"),
    _col("ChargeDescription", "charge_description"),
    _col("ChargeFrequency", "charge_frequency"),
    _col("PricingCategory", "pricing_category"),
    _col("PricingQuantity", "pricing_quantity", "numeric"),
    _col("PricingUnit", "pricing_unit"),
    _col("PricingCurrency", "pricing_currency", since="1.2"),
    _col("PricingCurrencyContractedUnitPrice", "pricing_currency_contracted_unit_price", "numeric", "1.2"),
    _col("PricingCurrencyEffectiveCost", "pricing_currency_effective_cost", "numeric", "1.2"),
    _col("PricingCurrencyListUnitPrice", "pricing_currency_list_unit_price", "numeric", "1.2"),
    _col("ConsumedQuantity", "consumed_quantity", "numeric"),
    _col("ConsumedUnit", "consumed_unit"),
    _col("ServiceName", "service_name"),
    _col("ServiceCategory", "service_category"),
    _col("ServiceSubcategory", "service_subcategory", since="1.1"),
    _col("SkuId", "sku_id"),
    _col("SkuMeter", "sku_meter", since="1.1"),
    _col("SkuPriceId", "sku_price_id"),
    _col("SkuPriceDetails", "sku_price_details", "jsonb", "1.1"),
    _col("ResourceId", "resource_id"),
    _col("ResourceName", "resource_name"),
    _col("ResourceType", "resource_type"),
    _col("RegionId", "region_id"),
    _col("RegionName", "region_name"),
    _col("AvailabilityZone", "availability_zone"),
    _col("CommitmentDiscountId", "commitment_discount_id"),
    _col("CommitmentDiscountName", "commitment_discount_name"),
    _col("CommitmentDiscountCategory", "commitment_discount_category"),
    _col("CommitmentDiscountType", "commitment_discount_type"),
    _col("CommitmentDiscountStatus", "commitment_discount_status"),
    _col("CommitmentDiscountQuantity", "commitment_discount_quantity", "numeric", "1.1"),
    _col("CommitmentDiscountUnit", "commitment_discount_unit", since="1.1"),
    _col("CapacityReservationId", "capacity_reservation_id", since="1.1"),
    _col("CapacityReservationStatus", "capacity_reservation_status", since="1.1"),
    _col("Tags", "tags", "jsonb"),
)
BY_NAME = {c.name: c for c in COLUMNS}
BY_LOWER = {c.name.lower(): c for c in COLUMNS}

# Without these the analyses cannot answer (amounts, currency, periods, what and whose).
REQUIRED = (
    "BilledCost", "EffectiveCost", "BillingCurrency", "BillingPeriodStart", "BillingPeriodEnd",
    "ChargePeriodStart", "ChargePeriodEnd", "ChargeCategory", "ProviderName", "ServiceName",
    "BillingAccountId",
)

# Columns that first appear in a FOCUS version after 1.2 (1.3 renames ProviderName to
# ServiceProviderName and adds HostProviderName, contract commitments...): a file with them is of a
# version whose meaning this code does not know, and guessing would misreport costs.
LATER_VERSION_MARKERS = (
    "ServiceProviderName", "HostProviderName", "ContractApplied", "AllocatedMethodId",
    "AllocatedResourceId",
)


@dataclass(frozen=True)
class HeaderMap:
    """How a file's columns land: `targets[i]` is the COLUMNS entry of file column i (or None), and
    `extras` the (position, name) of the columns kept in the `extra` json object."""

    version: str
    targets: tuple[FocusColumn | None, ...]
    extras: tuple[tuple[int, str], ...]


def map_header(header: list[str], declared_version: str | None = None) -> HeaderMap:
    """Map a FOCUS header; FocusError names what is wrong (unknown version, missing columns)."""
    names = [h.strip().lstrip("\ufeff") for h in header]
    if declared_version is not None and declared_version not in SUPPORTED_VERSIONS:
        raise FocusError(f"FOCUS version {declared_version!r} is not supported "
                         f"(supported: {', '.join(SUPPORTED_VERSIONS)})")
    later = [n for n in names if n in LATER_VERSION_MARKERS]
    if later and declared_version is None:
        raise FocusError(f"unknown FOCUS version: columns {', '.join(later)} belong to a version after "
                         f"{SUPPORTED_VERSIONS[-1]} (supported: {', '.join(SUPPORTED_VERSIONS)})")
    seen: set[str] = set()
    targets: list[FocusColumn | None] = []
    extras: list[tuple[int, str]] = []
    for position, name in enumerate(names):
        column = BY_NAME.get(name) or BY_LOWER.get(name.lower())
        if column is not None and column.name in seen:
            raise FocusError(f"column {name!r} appears twice in the header")
        if column is None:
            targets.append(None)
            if name:
                extras.append((position, name))
            continue
        seen.add(column.name)
        targets.append(column)
    missing = [name for name in REQUIRED if name not in seen]
    if missing:
        raise FocusError(f"not a FOCUS export: required column{'s' if len(missing) > 1 else ''} "
                         f"{', '.join(missing)} missing")
    return HeaderMap(declared_version or infer_version(seen), tuple(targets), tuple(extras))


def infer_version(present: set[str]) -> str:
    """The newest supported version whose own columns the file has (a 1.0 file has none of 1.1's)."""
    for version in reversed(SUPPORTED_VERSIONS):
        if any(c.since == version and c.name in present for c in COLUMNS):
            return version
    return SUPPORTED_VERSIONS[0]
