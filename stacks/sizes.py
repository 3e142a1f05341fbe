"""Size presets: `dataplatform:size` picks one, and anything under `dataplatform:services` overrides it.

small: one machine's worth (a workstation, a dev cluster); medium: a production baseline for hundreds of GB;
large: a few TB and heavier traffic. Numbers are per replica.
"""
SIZES: dict[str, dict] = {
    "small": {
        "object_storage": {"replicas": 1, "storage_gb": 50, "resources": {"cpu": "250m", "memory": "512Mi"}},
        "catalog": {"replicas": 1, "db_storage_gb": 10, "resources": {"cpu": "250m", "memory": "512Mi"}},
        "kafka": {"brokers": 1, "controllers": 1, "storage_gb": 20, "resources": {"cpu": "500m", "memory": "2Gi"},
                  "aws_instance_type": "kafka.t3.small"},
        "trino": {"workers": 1, "resources": {"cpu": "500m", "memory": "2Gi"},
                  "worker_resources": {"cpu": "1", "memory": "3Gi"}},
        "qdrant": {"replicas": 1, "storage_gb": 10, "resources": {"cpu": "250m", "memory": "1Gi"}},
        "milvus": {"storage_gb": 20, "resources": {"cpu": "1", "memory": "4Gi"}},
    },
    "medium": {
        "object_storage": {"replicas": 3, "storage_gb": 500, "resources": {"cpu": "1", "memory": "2Gi"}},
        "catalog": {"replicas": 2, "db_storage_gb": 50, "resources": {"cpu": "500m", "memory": "1Gi"}},
        "kafka": {"brokers": 3, "controllers": 3, "storage_gb": 500, "resources": {"cpu": "2", "memory": "8Gi"},
                  "aws_instance_type": "kafka.m7g.large"},
        "trino": {"workers": 2, "resources": {"cpu": "1", "memory": "4Gi"},
                  "worker_resources": {"cpu": "2", "memory": "8Gi"}},
        "qdrant": {"replicas": 3, "storage_gb": 100, "resources": {"cpu": "1", "memory": "4Gi"}},
        "milvus": {"storage_gb": 100, "resources": {"cpu": "2", "memory": "8Gi"}},
    },
    "large": {
        "object_storage": {"replicas": 4, "storage_gb": 2000, "resources": {"cpu": "2", "memory": "4Gi"}},
        "catalog": {"replicas": 3, "db_storage_gb": 200, "resources": {"cpu": "1", "memory": "2Gi"}},
        "kafka": {"brokers": 6, "controllers": 3, "storage_gb": 2000, "resources": {"cpu": "4", "memory": "16Gi"},
                  "aws_instance_type": "kafka.m7g.xlarge"},
        "trino": {"workers": 6, "resources": {"cpu": "2", "memory": "8Gi"},
                  "worker_resources": {"cpu": "4", "memory": "16Gi"}},
        "qdrant": {"replicas": 3, "storage_gb": 500, "resources": {"cpu": "2", "memory": "16Gi"}},
        "milvus": {"storage_gb": 500, "resources": {"cpu": "4", "memory": "16Gi"}},
    },
}
