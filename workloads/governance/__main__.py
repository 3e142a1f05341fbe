from workloads.governance.cli import app

app(prog_name="python -m workloads.governance")
