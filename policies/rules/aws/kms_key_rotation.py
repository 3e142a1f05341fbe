"""Customer-managed symmetric KMS keys rotate their key material yearly (or faster)."""
from policies.rule import Severity, resource_rule


def check(key, config):
    spec = key.props.get("customerMasterKeySpec") or key.props.get("keySpec") or "SYMMETRIC_DEFAULT"
    if spec != "SYMMETRIC_DEFAULT":
        return  # AWS only rotates symmetric keys
    if key.props.get("enableKeyRotation") is not True:
        yield "key rotation is off"
    elif (period := key.props.get("rotationPeriodInDays")) and period > config["maxRotationDays"]:
        yield f"rotates every {period} days, more than {config['maxRotationDays']}"


policy = resource_rule(
    name="aws-kms-key-rotation", domain="aws", severity=Severity.MEDIUM, check=check,
    applies={"aws:kms/key:Key"},
    description="KMS keys have automatic key rotation enabled.",
    remediation="Set enable_key_rotation=True on the aws.kms.Key (rotation_period_in_days defaults to 365).",
    config={"maxRotationDays": {"type": "integer", "default": 365}})
