"""Reading AWS payloads: typed models that ignore unknown keys and turn every problem into InvalidMessage.

Unknown keys are ignored because AWS adds fields to its messages; scalars are strict, so a "12" where AWS sends
a number, or a number where it sends text, is an error rather than a guess.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    AllowInfNan,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Strict,
    StringConstraints,
    ValidationError,
)
from pydantic_core import ErrorDetails

from costguard.app.sources.errors import InvalidMessage
from costguard.app.sources.text import is_printable

MAX_ERRORS_SHOWN = 3


class Wire(BaseModel):
    """An AWS payload as received: read-only, unknown keys ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)


def _printable(value: str) -> str:
    if not is_printable(value):
        raise ValueError("contains control or invisible characters")
    return value


def _none_if_blank(value: object) -> object:
    return None if isinstance(value, str) and not value.strip() else value


def aws_time(value: object) -> datetime:
    """An ISO-8601 time as AWS writes it (`Z`, `+0000` or a bare date), as an aware UTC datetime."""
    if not isinstance(value, str):
        raise ValueError("expected an ISO-8601 time string")  # never a Unix number: AWS does not send those here
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError("not an ISO-8601 time") from None
    if parsed.tzinfo is None:
        if "T" in value or ":" in value:
            raise ValueError("time has no time zone")
        parsed = parsed.replace(tzinfo=UTC)  # a bare date is a UTC day in Cost Explorer
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # year 1 or 9999 with an offset: outside what datetime holds in UTC
        raise ValueError("time out of range") from None


Text = Annotated[str, Strict()]
Name = Annotated[str, Strict(), StringConstraints(min_length=1, max_length=1024), AfterValidator(_printable)]
AccountId = Annotated[str, Strict(), StringConstraints(pattern=r"^\d{12}$")]
OptText = Annotated[Text | None, BeforeValidator(_none_if_blank)]
OptAccountId = Annotated[AccountId | None, BeforeValidator(_none_if_blank)]
Usd = Annotated[float, Strict(), AllowInfNan(False)]
Time = Annotated[datetime, BeforeValidator(aws_time)]

W = TypeVar("W", bound=Wire)


def _message(error: ErrorDetails) -> str:
    # pydantic names the model class ("instance of _Impact"); the sender only needs to know an object was expected
    return "Input should be an object" if error["type"] == "model_type" else error["msg"]


def problems(exc: ValidationError) -> str:
    """The first few errors of a validation, as `field: problem; field: problem`."""
    errors = exc.errors(include_url=False, include_input=False)
    shown = [f"{'.'.join(str(p) for p in err['loc']) or 'value'}: {_message(err)}" for err in errors[:MAX_ERRORS_SHOWN]]
    more = len(errors) - MAX_ERRORS_SHOWN
    return "; ".join(shown) + (f" (+{more} more)" if more > 0 else "")


def read(model: type[W], data: Any, what: str) -> W:
    """`data` validated as `model`, or InvalidMessage naming `what` and the fields at fault."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidMessage(f"{what}: {problems(exc)}") from exc
