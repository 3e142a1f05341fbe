"""How workloads reach Kafka from their environment: plain on the embedded platform, MSK IAM auth on AWS."""
import base64

from workloads.common import platform


def test_plain_kafka_from_the_environment(monkeypatch):
    monkeypatch.setenv("DP_KAFKA_BOOTSTRAP_SERVERS", "kafka:9092")
    for name in ("DP_KAFKA_SECURITY_PROTOCOL", "DP_KAFKA_SASL_MECHANISM", "DP_KAFKA_AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    assert platform.kafka_config(**{"group.id": "g"}) == {"bootstrap.servers": "kafka:9092", "group.id": "g"}


def test_msk_iam_signs_tokens_for_the_region(monkeypatch):
    """The callback librdkafka calls signs a token with the AWS credential chain (here: static test credentials,
    signing is local) for the region the Kafka contract exports; the token is the presigned kafka-cluster URL."""
    monkeypatch.setenv("DP_KAFKA_BOOTSTRAP_SERVERS", "b-1.msk.eu-west-1.amazonaws.com:9098")
    monkeypatch.setenv("DP_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("DP_KAFKA_SASL_MECHANISM", "OAUTHBEARER")
    monkeypatch.setenv("DP_KAFKA_AWS_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    conf = platform.kafka_config()
    assert (conf["security.protocol"], conf["sasl.mechanism"]) == ("SASL_SSL", "OAUTHBEARER")
    token, expiry = conf["oauth_cb"]("")
    url = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    assert url.startswith("https://kafka.eu-west-1.amazonaws.com/?Action=kafka-cluster%3AConnect")
    assert "X-Amz-Credential=AKIDEXAMPLE" in url and expiry > 0


def test_no_token_callback_without_a_region(monkeypatch):
    monkeypatch.setenv("DP_KAFKA_SASL_MECHANISM", "OAUTHBEARER")
    monkeypatch.delenv("DP_KAFKA_AWS_REGION", raising=False)
    assert "oauth_cb" not in platform.kafka_config()
