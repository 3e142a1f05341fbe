from workloads.medallion.cli import app

app(prog_name="python -m workloads.medallion")
