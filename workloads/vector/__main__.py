from workloads.vector.cli import app

app(prog_name="python -m workloads.vector")
