"""Data governance of the platform: quality gates, lineage, catalog metadata, access decisions, audit, PII.

Importing this package is cheap: Great Expectations, OpenLineage and the Rego engine load on first use.
"""
