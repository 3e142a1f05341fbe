"""Medallion workload: shop events from Kafka into bronze, silver and gold Iceberg tables.

Tables and topics: `tables`. Jobs: `python -m workloads.medallion --help`. Reading a table as it was:
`timetravel`. The same silver and gold transforms as Flink and Trino SQL: `sql/`.
"""
