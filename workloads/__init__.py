"""Workloads deployed onto the platform: medallion jobs, the MCP server, the vector layer, governance."""
