"""Entry point of `dp`. Each sub-command lives in its own module and imports heavy libraries lazily,
so `dp --help` stays fast."""
import typer

from dp import bench_cmd, local_cmd, plan_cmd, smoke_cmd

app = typer.Typer(help="Data platform: plan stacks offline, run the embedded platform, benchmark, smoke-test.",
                  no_args_is_help=True, add_completion=False)
app.command("plan")(plan_cmd.plan)
app.add_typer(bench_cmd.app, name="bench")
app.add_typer(local_cmd.app, name="local")
app.command("smoke")(smoke_cmd.smoke)

if __name__ == "__main__":
    app()
