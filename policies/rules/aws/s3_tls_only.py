"""S3 buckets refuse plain-HTTP requests: a bucket policy denies any request with aws:SecureTransport false."""
from policies.facts.aws import BUCKET, attached, policy_document, statements
from policies.rule import Severity, stack_rule

POLICY = "aws:s3/bucketPolicy:BucketPolicy"


def denies_insecure_transport(statement: dict) -> bool:
    condition = statement.get("Condition") or {}
    secure = (condition.get("Bool") or {}).get("aws:SecureTransport")
    actions = statement.get("Action")
    actions = [actions] if isinstance(actions, str) else actions or []
    return (statement.get("Effect") == "Deny" and str(secure).lower() in ("false", "['false']")
            and any(a in ("s3:*", "*") for a in actions))


def check(stack, config):
    for bucket in stack.of_type(BUCKET):
        documents = [policy_document(p.props.get("policy")) for p in attached(stack, bucket, POLICY, "bucket")]
        if not any(denies_insecure_transport(s) for d in documents for s in statements(d)):
            yield (f"bucket {bucket.name} has no policy statement denying s3:* when aws:SecureTransport is false",
                   bucket.urn)


policy = stack_rule(
    name="aws-s3-tls-only", domain="aws", severity=Severity.HIGH, check=check,
    description="S3 buckets deny requests that do not use TLS.",
    remediation="Attach an aws.s3.BucketPolicy with a statement {Effect: Deny, Principal: '*', Action: 's3:*', "
                "Resource: [bucket ARN, bucket ARN/*], Condition: {Bool: {'aws:SecureTransport': 'false'}}}.")
