"""The cloud behind one typed interface: `Cloud` (what costguard needs), `Ec2Cloud` (boto3: EC2 and CloudWatch)."""

from costguard.tools.cloud.base import IDEMPOTENCY_TAG, ORIGINAL_TYPE_TAG, Cloud, EffectResult
from costguard.tools.cloud.ec2 import Ec2Cloud

__all__ = ["IDEMPOTENCY_TAG", "ORIGINAL_TYPE_TAG", "Cloud", "Ec2Cloud", "EffectResult"]
