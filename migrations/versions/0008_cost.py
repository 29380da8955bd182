"""cost: FOCUS billing sources per organization, the ingest manifest, monthly-partitioned line items

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28 20:05:00

Issue 15. cost_line_items is partitioned by month of ChargePeriodStart; its partitions are created on
demand by nightshift.cost_ensure_partitions (sql/), not here.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cost_sources",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("organization_id", sa.BigInteger(), nullable=False),
        sa.Column("uri", sa.Text(), nullable=False, comment="a local path, or s3://bucket/prefix"),
        sa.Column("focus_version", sa.Text(), nullable=True,
                  comment="declared FOCUS version; NULL: inferred from each file's columns"),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["organization_id"], ["nightshift.organizations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("organization_id", "uri"),
        schema="nightshift",
    )
    op.create_table(
        "cost_ingests",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("source_id", sa.BigInteger(), nullable=False),
        sa.Column("object_key", sa.Text(), nullable=False, comment="the file's path or S3 key"),
        sa.Column("sha256", sa.Text(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("focus_version", sa.Text(), nullable=False),
        sa.Column("billing_periods", postgresql.ARRAY(sa.DateTime(timezone=True)), nullable=False,
                  comment="the BillingPeriodStart values the file covers (and replaced)"),
        sa.Column("replaced_by", sa.BigInteger(), nullable=True,
                  comment="the later ingest that replaced (some of) its billing periods"),
        sa.Column("ingested_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["source_id"], ["nightshift.cost_sources.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["replaced_by"], ["nightshift.cost_ingests.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        schema="nightshift",
    )
    op.create_index("cost_ingests_source_key_idx", "cost_ingests", ["source_id", "object_key"],
                    schema="nightshift")
    op.create_table(
        "cost_line_items",
        sa.Column("source_id", sa.BigInteger(), nullable=False,
                  server_default=sa.text("(current_setting('nightshift.cost_source_id'))::bigint")),
        sa.Column("ingest_id", sa.BigInteger(), nullable=False,
                  server_default=sa.text("(current_setting('nightshift.cost_ingest_id'))::bigint")),
        sa.Column("charge_period_start", sa.DateTime(timezone=True), nullable=False,
                  comment="ChargePeriodStart"),
        sa.Column("charge_period_end", sa.DateTime(timezone=True), nullable=True, comment="ChargePeriodEnd"),
        sa.Column("billing_period_start", sa.DateTime(timezone=True), nullable=True,
                  comment="BillingPeriodStart"),
        sa.Column("billing_period_end", sa.DateTime(timezone=True), nullable=True,
                  comment="BillingPeriodEnd"),
        sa.Column("billing_currency", sa.Text(), nullable=True, comment="BillingCurrency"),
        sa.Column("billed_cost", sa.Numeric(), nullable=True, comment="BilledCost"),
        sa.Column("effective_cost", sa.Numeric(), nullable=True, comment="EffectiveCost"),
        sa.Column("list_cost", sa.Numeric(), nullable=True, comment="ListCost"),
        sa.Column("contracted_cost", sa.Numeric(), nullable=True, comment="ContractedCost"),
        sa.Column("list_unit_price", sa.Numeric(), nullable=True, comment="ListUnitPrice"),
        sa.Column("contracted_unit_price", sa.Numeric(), nullable=True, comment="ContractedUnitPrice"),
        sa.Column("provider_name", sa.Text(), nullable=True, comment="ProviderName"),
        sa.Column("publisher_name", sa.Text(), nullable=True, comment="PublisherName"),
        sa.Column("invoice_issuer_name", sa.Text(), nullable=True, comment="InvoiceIssuerName"),
        sa.Column("invoice_id", sa.Text(), nullable=True, comment="InvoiceId"),
        sa.Column("billing_account_id", sa.Text(), nullable=True, comment="BillingAccountId"),
        sa.Column("billing_account_name", sa.Text(), nullable=True, comment="BillingAccountName"),
        sa.Column("billing_account_type", sa.Text(), nullable=True, comment="BillingAccountType"),
        sa.Column("sub_account_id", sa.Text(), nullable=True, comment="SubAccountId"),
        sa.Column("sub_account_name", sa.Text(), nullable=True, comment="SubAccountName"),
        sa.Column("sub_account_type", sa.Text(), nullable=True, comment="SubAccountType"),
        sa.Column("charge_category", sa.Text(), nullable=True, comment="ChargeCategory"),
        sa.Column("charge_class", sa.Text(), nullable=True, comment="ChargeClass"),
        sa.Column("charge_description", sa.Text(), nullable=True, comment="ChargeDescription"),
        sa.Column("charge_frequency", sa.Text(), nullable=True, comment="ChargeFrequency"),
        sa.Column("pricing_category", sa.Text(), nullable=True, comment="PricingCategory"),
        sa.Column("pricing_quantity", sa.Numeric(), nullable=True, comment="PricingQuantity"),
        sa.Column("pricing_unit", sa.Text(), nullable=True, comment="PricingUnit"),
        sa.Column("pricing_currency", sa.Text(), nullable=True, comment="PricingCurrency"),
        sa.Column("pricing_currency_contracted_unit_price", sa.Numeric(), nullable=True,
                  comment="PricingCurrencyContractedUnitPrice"),
        sa.Column("pricing_currency_effective_cost", sa.Numeric(), nullable=True,
                  comment="PricingCurrencyEffectiveCost"),
        sa.Column("pricing_currency_list_unit_price", sa.Numeric(), nullable=True,
                  comment="PricingCurrencyListUnitPrice"),
        sa.Column("consumed_quantity", sa.Numeric(), nullable=True, comment="ConsumedQuantity"),
        sa.Column("consumed_unit", sa.Text(), nullable=True, comment="ConsumedUnit"),
        sa.Column("service_name", sa.Text(), nullable=True, comment="ServiceName"),
        sa.Column("service_category", sa.Text(), nullable=True, comment="ServiceCategory"),
        sa.Column("service_subcategory", sa.Text(), nullable=True, comment="ServiceSubcategory"),
        sa.Column("sku_id", sa.Text(), nullable=True, comment="SkuId"),
        sa.Column("sku_meter", sa.Text(), nullable=True, comment="SkuMeter"),
        sa.Column("sku_price_id", sa.Text(), nullable=True, comment="SkuPriceId"),
        sa.Column("sku_price_details", postgresql.JSONB(), nullable=True, comment="SkuPriceDetails"),
        sa.Column("resource_id", sa.Text(), nullable=True, comment="ResourceId"),
        sa.Column("resource_name", sa.Text(), nullable=True, comment="ResourceName"),
        sa.Column("resource_type", sa.Text(), nullable=True, comment="ResourceType"),
        sa.Column("region_id", sa.Text(), nullable=True, comment="RegionId"),
        sa.Column("region_name", sa.Text(), nullable=True, comment="RegionName"),
        sa.Column("availability_zone", sa.Text(), nullable=True, comment="AvailabilityZone"),
        sa.Column("commitment_discount_id", sa.Text(), nullable=True, comment="CommitmentDiscountId"),
        sa.Column("commitment_discount_name", sa.Text(), nullable=True, comment="CommitmentDiscountName"),
        sa.Column("commitment_discount_category", sa.Text(), nullable=True,
                  comment="CommitmentDiscountCategory"),
        sa.Column("commitment_discount_type", sa.Text(), nullable=True, comment="CommitmentDiscountType"),
        sa.Column("commitment_discount_status", sa.Text(), nullable=True, comment="CommitmentDiscountStatus"),
        sa.Column("commitment_discount_quantity", sa.Numeric(), nullable=True,
                  comment="CommitmentDiscountQuantity"),
        sa.Column("commitment_discount_unit", sa.Text(), nullable=True, comment="CommitmentDiscountUnit"),
        sa.Column("capacity_reservation_id", sa.Text(), nullable=True, comment="CapacityReservationId"),
        sa.Column("capacity_reservation_status", sa.Text(), nullable=True,
                  comment="CapacityReservationStatus"),
        sa.Column("tags", postgresql.JSONB(), nullable=True, comment="Tags"),
        sa.Column("extra", postgresql.JSONB(), nullable=True,
                  comment="provider columns x_* and other non-FOCUS columns of the file"),
        schema="nightshift",
        postgresql_partition_by="RANGE (charge_period_start)",
    )
    op.create_index("cost_line_items_source_ingest_idx", "cost_line_items",
                    ["source_id", "ingest_id", "billing_period_start"], schema="nightshift")


def downgrade() -> None:
    op.drop_table("cost_line_items", schema="nightshift")
    op.drop_table("cost_ingests", schema="nightshift")
    op.drop_table("cost_sources", schema="nightshift")
