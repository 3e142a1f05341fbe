"""Every taggable AWS resource carries the platform's ownership tags, so cost and incidents reach their owner."""
from policies.facts.aws import tags_of, taggable
from policies.rule import Severity, resource_rule


def check(resource, config):
    if not (taggable(resource.type) or "tags" in resource.props or "tagsAll" in resource.props):
        return
    tags = tags_of(resource)
    missing = [key for key in config["tags"] if not str(tags.get(key) or "").strip()]
    if missing:
        yield f"missing tags: {', '.join(missing)}"


policy = resource_rule(
    name="aws-required-tags", domain="aws", severity=Severity.LOW, check=check,
    applies=lambda type_: type_.startswith("aws:"),
    description="Taggable AWS resources carry the owner, environment and cost-center tags.",
    remediation="Pass the platform tags (PlatformConfig.tags: owner, environment, cost-center) as `tags=` or set "
                "them once as the AWS provider's default_tags.",
    config={"tags": {"type": "array", "items": {"type": "string"},
                     "default": ["owner", "environment", "cost-center"]}})
