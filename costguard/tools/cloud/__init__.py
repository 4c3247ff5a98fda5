"""The cloud behind typed interfaces: `Cloud` (EC2 instances; every kind through `Cloud.kind`), `Ec2Cloud` (boto3)."""

from costguard.tools.cloud.base import IDEMPOTENCY_TAG, ORIGINAL_TYPE_TAG, Cloud, Effect, EffectResult, ResourceKind
from costguard.tools.cloud.ec2 import Ec2Cloud

__all__ = ["IDEMPOTENCY_TAG", "ORIGINAL_TYPE_TAG", "Cloud", "Ec2Cloud", "Effect", "EffectResult", "ResourceKind"]
