"""Settings from the environment (flags override them in the CLI)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Method = Literal["function_calling", "json_schema", "json_mode"]  # how a model is asked for structured output
StructuredMethod = Literal["auto", "function_calling", "json_schema", "json_mode"]


class Settings(BaseSettings):
    """Every variable the design names. Nothing here is read at import time."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    openai_base_url: str | None = Field(default=None, validation_alias="OPENAI_BASE_URL")
    openai_api_key: SecretStr | None = Field(default=None, validation_alias="OPENAI_API_KEY")
    model: str = Field(default="smollm2-135m-instruct", validation_alias="COSTGUARD_MODEL")
    structured_method: StructuredMethod = Field(default="auto", validation_alias="COSTGUARD_STRUCTURED_METHOD")
    model_timeout_s: float = Field(default=60.0, validation_alias="COSTGUARD_MODEL_TIMEOUT")
    aws_endpoint_url: str | None = Field(default=None, validation_alias="AWS_ENDPOINT_URL")
    aws_region: str = Field(default="us-east-1", validation_alias=AliasChoices("AWS_DEFAULT_REGION", "AWS_REGION"))
    # a SQLite file (the default) or a postgresql:// URL (a shared PostgreSQL for many workers)
    db: str = Field(default="costguard.db", validation_alias="COSTGUARD_DB")
    policy: Path | None = Field(default=None, validation_alias="COSTGUARD_POLICY")
    alert_webhook: str | None = Field(default=None, validation_alias="COSTGUARD_ALERT_WEBHOOK")
    # the review front end (agent-chat-ui) with its apiUrl and assistantId: links in notices and `review show`
    review_ui_url: str | None = Field(default=None, validation_alias="COSTGUARD_REVIEW_UI_URL")
    # "exit": checkpoints at review pauses, before execute and at the end (see CostGuard._run);
    # "sync": one per step (finer time travel, ~2x the cost per alert).
    durability: Literal["exit", "sync"] = Field(default="exit", validation_alias="COSTGUARD_DURABILITY")

    @field_validator("db", mode="before")
    @classmethod
    def _db_as_text(cls, value: object) -> object:
        """A path given in code (``Settings(db=Path(...))``) is the same file as its text."""
        return str(value) if isinstance(value, Path) else value
