"""Message queues alerts arrive on: `Queue` (what the watcher needs), `SqsQueue` (boto3's SQS)."""

from costguard.tools.queue.sqs import Message, Queue, SqsQueue

__all__ = ["Message", "Queue", "SqsQueue"]
