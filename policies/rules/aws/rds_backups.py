"""RDS databases keep automated backups long enough to notice a problem, and take a final snapshot on delete."""
from policies.rule import Severity, resource_rule


def check(database, config):
    retention = database.props.get("backupRetentionPeriod")
    if not isinstance(retention, int) or retention < config["minRetentionDays"]:
        yield (f"backup retention is {retention if retention is not None else 'unset (1 day)'}, "
               f"below {config['minRetentionDays']} days")
    if database.props.get("skipFinalSnapshot") is True:
        yield "skip_final_snapshot is True: deleting the database would lose its data"


policy = resource_rule(
    name="aws-rds-backups", domain="aws", severity=Severity.HIGH, check=check,
    applies={"aws:rds/instance:Instance", "aws:rds/cluster:Cluster"},
    description="RDS databases keep automated backups and take a final snapshot when deleted.",
    remediation="Set backup_retention_period (at least the configured minimum, 7 days by default), "
                "skip_final_snapshot=False and a final_snapshot_identifier.",
    config={"minRetentionDays": {"type": "integer", "default": 7}})
