"""The embedded platform: Kafka API broker, Iceberg catalog, warehouse and medallion jobs on one machine."""
