"""The data platform's MCP server: how AI agents and people discover and query the platform's Iceberg tables.

One service layer (service.py) behind two surfaces: MCP tools (mcp_tools.py; streamable HTTP at /mcp and
stdio) and REST under /api/v1 (rest.py), plus /healthz, /readyz and /metrics (app.py). Queries are checked
on the parsed SQL (sql_guard.py) and run on DuckDB over pyiceberg scans (engine_duckdb.py) or on Trino
(engine_trino.py). Callers authenticate with API keys or JWTs (auth.py); the policy file (access.yaml,
policy.py) decides tables, columns, PII masking and rate limits; every call is audited (audit.py).
Configuration: environment variables only, listed in config.py. Entry points: __main__.py.
"""
