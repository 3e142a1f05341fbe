"""Plan the medallion Flink SQL jobs with PyFlink's local planner; run with the PyFlink virtualenv's python.

Input (a JSON file, argv[1]): {"ddl": [CREATE statements], "jobs": {name: INSERT statement}, "extra_jobs": {...}}
(extra jobs are planned alone, not in the statement set: tests use them as negative controls), built by
`workloads.medallion.sqljobs.flink_spec()` from the real Iceberg schemas. Output (stdout, JSON):
{"jobs": {name: {"ok": bool, "plan" or "error"}}, "statement_set": {...}}: each job explained on its own, then
all of them together as one statement set (one Flink job per deployment). Needs Java 17; starts a local JVM.
"""
import json
import sys

from pyflink.table import EnvironmentSettings, TableEnvironment


def main(path: str) -> None:
    spec = json.load(open(path))
    env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    env.get_config().set("table.local-time-zone", "UTC")
    env.get_config().set("parallelism.default", "1")
    for statement in spec["ddl"]:
        env.execute_sql(statement)
    results = {}
    for name, sql in {**spec["jobs"], **spec.get("extra_jobs", {})}.items():
        try:
            results[name] = {"ok": True, "plan": env.explain_sql(sql)}
        except Exception as exc:  # report every job, not just the first failure
            results[name] = {"ok": False, "error": str(exc)}
    together = env.create_statement_set()
    try:
        for sql in spec["jobs"].values():
            together.add_insert_sql(sql)
        combined = {"ok": True, "plan": together.explain()}
    except Exception as exc:
        combined = {"ok": False, "error": str(exc)}
    print(json.dumps({"jobs": results, "statement_set": combined}))


if __name__ == "__main__":
    main(sys.argv[1])
