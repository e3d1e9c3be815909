"""Configuration: pydantic settings models, read from `OMOI_*` environment variables and
validated at start, so a bad value is an input error before anything runs."""

from __future__ import annotations

import re
from typing import Any, Literal, TypeVar

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from omoi.runtime.errors import InputError
from omoi.runtime.sandbox.tree_quota import TreeLimits

_S = TypeVar("_S", bound=BaseSettings)
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)([kmg]?)$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
UNLIMITED = "unlimited"
# [host[:port]/]name[/name...][:tag][@digest], names in lower case, as the engine accepts them
_IMAGE = re.compile(
    r"^(?:[a-zA-Z0-9.-]+(?::\d+)?/)?[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$"
)


def size_bytes(value: str) -> int | None:
    """Bytes a size setting names (`512m`, `2g`, `1.5g`), or None for `unlimited`."""
    if value.strip().lower() == UNLIMITED:
        return None
    match = _SIZE.match(value.strip())
    if not match:
        raise ValueError(f"'{value}' is not a size (a number with k, m or g, e.g. 2g, or '{UNLIMITED}')")
    return int(float(match[1]) * _UNITS[match[2].lower()])


def _bounded_size(value: str, floor: int, floor_text: str, *, unlimited: bool) -> str:
    n = size_bytes(value)
    if n is None:
        if not unlimited:
            raise ValueError(f"'{value}': this limit cannot be unlimited")
        return UNLIMITED
    if n < floor:
        spelled = f" (spell '{UNLIMITED}' for no limit)" if unlimited else ""
        raise ValueError(f"'{value}' is below the smallest usable size, {floor_text}{spelled}")
    return value


class SandboxSettings(BaseSettings):
    """The Docker sandbox: image, limits, and how many containers each slot keeps started.

    Every limit is a real bound: 0 or a size too small to start a container is refused, and
    where no limit is allowed at all it must be spelled `unlimited`."""

    model_config = SettingsConfigDict(env_prefix="OMOI_SANDBOX_", extra="ignore")

    image: str | None = Field(default=None, description="image tag (default omoi-sandbox:<version>)")
    memory: str = Field(default="2g", description="memory limit, e.g. 512m, 2g, or unlimited (no swap)")
    cpus: float = Field(default=1.0, ge=0.01, le=256, description="CPU limit")
    pids: int = Field(default=512, ge=16, le=1_000_000, description="process limit")
    tmpfs: str = Field(default="512m", description="size of /tmp and of the home directory")
    disk: str = Field(default="2g", description="bytes the workspace may hold (apparent sizes), or unlimited")
    max_file: str = Field(default="100m", description="bytes one committed file may have, or unlimited")
    pool: int = Field(default=1, ge=0, le=32, description="containers each slot keeps started ahead")

    @field_validator("image")
    @classmethod
    def _image(cls, value: str | None) -> str | None:
        if value is not None and not _IMAGE.match(value):
            raise ValueError(f"'{value}' is not an image reference (e.g. omoi-sandbox:0.1.0, my/image:tag)")
        return value

    @field_validator("memory")
    @classmethod
    def _memory(cls, value: str) -> str:
        return _bounded_size(value, 16 << 20, "16m", unlimited=True)

    @field_validator("tmpfs")
    @classmethod
    def _tmpfs(cls, value: str) -> str:
        return _bounded_size(value, 1 << 20, "1m", unlimited=False)

    @field_validator("disk", "max_file")
    @classmethod
    def _tree(cls, value: str) -> str:
        return _bounded_size(value, 1 << 10, "1k", unlimited=True)

    def tree_limits(self) -> TreeLimits:
        return TreeLimits(disk=size_bytes(self.disk), max_file=size_bytes(self.max_file))


def sandbox_settings() -> SandboxSettings:
    return _load(SandboxSettings, "OMOI_SANDBOX_")


class Price(BaseModel):
    """US dollars per million tokens."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cache_write: float = Field(ge=0)
    cache_read: float = Field(ge=0)


def _price(input_usd: float, output_usd: float) -> Price:
    """Anthropic's list prices: a cache write costs 1.25x input, a cache read 0.1x."""
    return Price(input=input_usd, output=output_usd, cache_write=input_usd * 1.25, cache_read=input_usd * 0.1)


DEFAULT_ROUTES = {
    "quick": "claude-haiku-4-5",
    "default": "claude-sonnet-4-6",
    "deep": "claude-opus-4-6",
    "oracle": "claude-opus-4-6",
}
# List prices when this was written; override with OMOI_MODEL_PRICES when they change.
DEFAULT_PRICES = {
    "claude-haiku-4-5": _price(1.0, 5.0),
    "claude-sonnet-4-5": _price(3.0, 15.0),
    "claude-sonnet-4-6": _price(3.0, 15.0),
    "claude-opus-4-5": _price(5.0, 25.0),
    "claude-opus-4-6": _price(5.0, 25.0),
}


class ModelSettings(BaseSettings):
    """The model provider: where to reach it, which model serves each task category, what a token
    costs, how many calls may be in flight per model, and how failed calls are retried.

    Dict fields take JSON (`OMOI_MODEL_ROUTES='{"default": "claude-opus-4-5"}'`) and are merged
    over the defaults, so overriding one route keeps the others."""

    model_config = SettingsConfigDict(env_prefix="OMOI_MODEL_", extra="ignore", populate_by_name=True)

    base_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("OMOI_MODEL_BASE_URL", "ANTHROPIC_BASE_URL", "base_url"),
        description="the Messages API endpoint (default: the SDK's, api.anthropic.com)",
    )
    api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("OMOI_MODEL_API_KEY", "ANTHROPIC_API_KEY", "api_key")
    )
    routes: dict[str, str] = Field(default_factory=dict, description="task category -> model")
    prices: dict[str, Price] = Field(default_factory=dict, description="model -> USD per million tokens")
    limits: dict[str, int] = Field(
        default_factory=dict, description="model or provider -> calls in flight cluster-wide (0: unlimited)"
    )
    default_limit: int = Field(default=5, ge=0, description="limit for a model and provider not in `limits`")
    max_tries: int = Field(default=8, ge=1, le=100, description="tries per call before it fails")
    backoff: float = Field(default=0.5, ge=0, le=60, description="first retry delay cap in seconds; doubles")
    backoff_cap: float = Field(default=30.0, ge=0, le=600, description="largest retry delay drawn")
    timeout: float = Field(default=300.0, gt=0, le=3600, description="seconds one HTTP call may take")
    max_tokens: int = Field(default=8192, ge=1, le=128_000, description="output tokens per model turn")

    @field_validator("routes", mode="after")
    @classmethod
    def _routes(cls, value: dict[str, str]) -> dict[str, str]:
        return {**DEFAULT_ROUTES, **value}

    @field_validator("prices", mode="after")
    @classmethod
    def _prices(cls, value: dict[str, Price]) -> dict[str, Price]:
        return {**DEFAULT_PRICES, **value}

    @field_validator("limits", mode="after")
    @classmethod
    def _limits(cls, value: dict[str, int]) -> dict[str, int]:
        bad = [k for k, v in value.items() if v < 0]
        if bad:
            raise ValueError(f"limits must be 0 (unlimited) or more; {', '.join(bad)} is negative")
        return value

    def model_for(self, category: str) -> str:
        if category not in self.routes:
            known = ", ".join(sorted(self.routes))
            raise InputError(
                f"no model for category '{category}' (known: {known}); add it to OMOI_MODEL_ROUTES"
            )
        return self.routes[category]


class AgentSettings(BaseSettings):
    """How far the runtime lets an agent go before it decides for it."""

    model_config = SettingsConfigDict(env_prefix="OMOI_AGENT_", extra="ignore")

    max_turns: int = Field(default=60, ge=1, le=1000, description="model turns per attempt")
    continuations: int = Field(default=3, ge=0, le=50, description="re-prompts of an agent that stops early")
    escalate_after: int = Field(
        default=3, ge=1, le=100, description="failed acceptance rounds before the oracle"
    )
    output_cap: int = Field(default=8000, ge=256, description="characters of a tool result the model sees")
    event_cap: int = Field(default=2000, ge=64, description="characters of arguments/results in events")
    heartbeat_interval: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="seconds: an agent that published nothing this long says it is alive",
    )
    host: Literal["own", "slot"] = Field(
        default="slot",
        description="slot: an agent's conversation runs in its sandbox slot's process, its tool calls "
        "method calls; own: in a process of its own next to the slot (killed with a cancelled attempt)",
    )


class MergeSettings(BaseSettings):
    """The merge queue's timers."""

    model_config = SettingsConfigDict(env_prefix="OMOI_", extra="ignore")

    radar_interval: float = Field(
        default=30.0, gt=0, le=86400, description="seconds between conflict predictions over running branches"
    )


class SupervisionSettings(BaseSettings):
    """The guardian's pacing, and whether it acts at all (`OMOI_SUPERVISION=off`)."""

    model_config = SettingsConfigDict(env_prefix="OMOI_", extra="ignore")

    supervision: Literal["on", "off"] = Field(
        default="on", description="off: no guardian signals or interventions (pause and resume still work)"
    )
    guardian_interval: float = Field(
        default=60.0, gt=0, le=86400, description="seconds between the guardian's timed looks (idle agents)"
    )
    guardian_cooldown: float = Field(
        default=300.0, ge=0, le=86400, description="seconds between two interventions on one agent"
    )
    guardian_model: str = Field(
        default="quick", min_length=1, description="the model route a guardian's assessments use"
    )
    replan_model: str = Field(
        default="default", min_length=1, description="the model route the replan rung's planner uses"
    )
    guardian_grace: float = Field(
        default=120.0, ge=0, le=86400, description="seconds a new agent works before it is assessed"
    )
    conductor_interval: float = Field(
        default=300.0, gt=0, le=86400, description="seconds between the conductor's timed looks"
    )
    conductor_model: str = Field(
        default="quick", min_length=1, description="the model route that judges the run's coherence"
    )
    conductor_stall: float = Field(
        default=600.0, gt=0, le=86400, description="seconds a run waits on a person before a diagnostic task"
    )
    discovery_gate: Literal["auto", "review", "human"] = Field(
        default="auto",
        description="review: a reviewer model decides each discovery; human: omoi approve|reject --discovery",
    )
    discovery_model: str = Field(
        default="default", min_length=1, description="the model route the discovery reviewer uses"
    )
    discovery_max: int = Field(default=20, ge=0, le=10_000, description="discovered tasks per run")
    discovery_per_task: int = Field(
        default=5, ge=0, le=1000, description="discovered tasks one task may spawn"
    )
    discovery_depth: int = Field(
        default=3,
        ge=1,
        le=100,
        description="how deep a chain of discoveries may go (discovered by discovered ...)",
    )


def supervision_settings() -> SupervisionSettings:
    return _load(SupervisionSettings, "OMOI_")


def merge_settings() -> MergeSettings:
    return _load(MergeSettings, "OMOI_")


def model_settings(**overrides: Any) -> ModelSettings:
    return _load(ModelSettings, "OMOI_MODEL_", **overrides)


def agent_settings() -> AgentSettings:
    return _load(AgentSettings, "OMOI_AGENT_")


def _load(cls: type[_S], prefix: str, **overrides: Any) -> _S:
    """Settings from the environment; a bad value is an InputError naming the variable."""
    try:
        return cls(**overrides)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0]) if err["loc"] else "?"
        raise InputError(f"{prefix}{field.upper()}: {err['msg'].removeprefix('Value error, ')}") from exc
    except SettingsError as exc:  # a dict or list field whose variable is not JSON
        match = re.search(r'field "(\w+)"', str(exc))
        field = match[1] if match else "?"
        var, example = f"{prefix}{field.upper()}", _JSON_EXAMPLES.get(field, "{...}")
        raise InputError(f"{var}: not valid JSON (give an object, e.g. {var}='{example}')") from exc


_JSON_EXAMPLES = {
    "routes": '{"default": "claude-sonnet-4-6"}',
    "prices": '{"claude-sonnet-4-6": {"input": 3, "output": 15, "cache_write": 3.75, "cache_read": 0.3}}',
    "limits": '{"claude-sonnet-4-6": 4}',
}


def check_settings() -> None:
    """Every setting, read and validated: a run's front door calls this before Ray starts."""
    sandbox_settings()
    model_settings()
    agent_settings()
    merge_settings()
    supervision = supervision_settings()
    models = model_settings()
    models.model_for(supervision.guardian_model)  # OMOI_GUARDIAN_MODEL names a route
    models.model_for(supervision.replan_model)
    models.model_for(supervision.discovery_model)
    models.model_for(supervision.conductor_model)
