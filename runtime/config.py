"""Configuration: pydantic settings models, read from `OMOI_*` environment variables and
validated at start, so a bad value is an input error before anything runs."""

from __future__ import annotations

import re

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from omoi.runtime.errors import InputError

_SIZE = re.compile(r"^\d+(\.\d+)?[kmg]?$", re.IGNORECASE)


class SandboxSettings(BaseSettings):
    """The Docker sandbox: image, limits, and how many containers each slot keeps started."""

    model_config = SettingsConfigDict(env_prefix="OMOI_SANDBOX_", extra="ignore")

    image: str | None = Field(default=None, description="image tag (default omoi-sandbox:<version>)")
    memory: str = Field(default="2g", description="memory limit, e.g. 512m, 2g (swap is not allowed)")
    cpus: float = Field(default=1.0, gt=0, le=256, description="CPU limit")
    pids: int = Field(default=512, ge=16, le=1_000_000, description="process limit")
    tmpfs: str = Field(default="512m", description="size of /tmp and of the home directory")
    pool: int = Field(default=1, ge=0, le=32, description="containers each slot keeps started ahead")

    @field_validator("memory", "tmpfs")
    @classmethod
    def _size(cls, value: str) -> str:
        if not _SIZE.match(value):
            raise ValueError(f"'{value}' is not a size (a number with k, m or g, e.g. 2g)")
        return value


def sandbox_settings() -> SandboxSettings:
    try:
        return SandboxSettings()
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0]) if err["loc"] else "?"
        raise InputError(f"OMOI_SANDBOX_{field.upper()}: {err['msg'].removeprefix('Value error, ')}") from exc
