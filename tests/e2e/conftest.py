"""Docker fixtures. With OMOI_REQUIRE_DOCKER=1 (CI) a missing engine or image fails the tests
instead of skipping them, so the sandbox tests can never silently stop running."""

from __future__ import annotations

import os
from typing import Any

import pytest

from omoi.runtime.docker_sandbox import connect_engine
from omoi.runtime.errors import SandboxError
from omoi.runtime.image import build_image, default_tag, image_exists


@pytest.fixture(scope="session")
def docker_image() -> tuple[Any, str]:
    required = os.environ.get("OMOI_REQUIRE_DOCKER") == "1"
    try:
        client = connect_engine()
    except SandboxError as exc:
        if required:
            pytest.fail(f"OMOI_REQUIRE_DOCKER=1 but {exc}")
        pytest.skip(str(exc))
    tag = default_tag()
    if not image_exists(client, tag):
        if not required:
            pytest.skip(f"{tag} is not built (omoi sandbox build-image)")
        build_image(client, tag=tag)
    return client, tag
