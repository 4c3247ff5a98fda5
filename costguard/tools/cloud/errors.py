"""botocore's exceptions in costguard's taxonomy, and EC2's DryRun answer read as a result."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import botocore.exceptions
import tenacity

from costguard.errors import CloudError, CloudPermissionError, CloudUnavailable, ResourceNotFound
from costguard.tools.cloud.base import EffectResult

_RETRYABLE_CODES = {
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "ServiceUnavailable",
    "Unavailable",
    "InternalError",
    "InternalFailure",
    "RequestTimeout",
}
_PERMISSION_CODES = {
    "UnauthorizedOperation",
    "AccessDenied",
    "AccessDeniedException",
    "AuthFailure",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "OperationNotPermitted",
}
NOT_FOUND_CODES = {
    "InvalidInstanceID.NotFound",
    "InvalidInstanceID.Malformed",
    "InvalidVolume.NotFound",
    "InvalidAllocationID.NotFound",
    "DBInstanceNotFound",
    "DBInstanceNotFoundFault",
}


READ_ATTEMPTS = 3
# Reads are idempotent: each is retried on its own (throttling, 5xx, timeouts), 3 attempts with
# exponential backoff and jitter, so one throttled describe does not cost a whole step. Effects
# are never retried here: their retries are whole, ledgered steps (the node's RetryPolicy).
read_retry = tenacity.retry(
    retry=tenacity.retry_if_exception_type(CloudUnavailable),
    stop=tenacity.stop_after_attempt(READ_ATTEMPTS),
    wait=tenacity.wait_exponential_jitter(multiplier=0.1, max=2.0),
    reraise=True,
)


@contextmanager
def mapped_errors(what: str) -> Iterator[None]:
    """Turn botocore's exceptions into costguard's taxonomy."""
    try:
        yield
    except botocore.exceptions.ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        message = f"{what}: {code}: {error.get('Message', '')}"
        if code in _PERMISSION_CODES:
            raise CloudPermissionError(message) from exc
        if code in NOT_FOUND_CODES:
            raise ResourceNotFound(message) from exc
        if code in _RETRYABLE_CODES or status >= 500:
            raise CloudUnavailable(message) from exc
        raise CloudError(message) from exc
    except botocore.exceptions.NoCredentialsError as exc:
        raise CloudPermissionError(f"{what}: no AWS credentials found") from exc
    except (
        botocore.exceptions.EndpointConnectionError,
        botocore.exceptions.ConnectTimeoutError,
        botocore.exceptions.ReadTimeoutError,
        botocore.exceptions.ConnectionClosedError,
    ) as exc:
        raise CloudUnavailable(f"{what}: {exc}") from exc


def dry_run_call(call: Callable[[], object], what: str) -> EffectResult:
    """Run an EC2 call with DryRun=True: AWS answers DryRunOperation when it would have acted."""
    try:
        call()
    except botocore.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "DryRunOperation":
            return "dry_run_ok"
        with mapped_errors(what):
            raise
    raise CloudError(f"{what}: DryRun=True was not honoured (the call returned normally)")
