"""`omoi sandbox doctor`: what the Docker sandbox needs, checked one by one, with the fix for each."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass

from omoi.runtime.config import UNLIMITED, sandbox_settings
from omoi.runtime.errors import SandboxError
from omoi.runtime.sandbox.docker import DockerLimits, connect_engine
from omoi.runtime.sandbox.image import default_tag, image_exists


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def run_checks() -> Iterator[Check]:
    try:
        client = connect_engine()
    except SandboxError as exc:
        yield Check("engine", False, str(exc), "install docker.io and start dockerd (as root: dockerd &)")
        return
    yield Check("engine", True, f"Docker {client.version().get('Version', '?')}")
    tag = sandbox_settings().image or default_tag()
    if not image_exists(client, tag):
        yield Check("image", False, f"{tag} is not built", "omoi sandbox build-image")
        yield Check(
            "debootstrap",
            shutil.which("debootstrap") is not None,
            "needed to build the image",
            "apt-get install debootstrap",
        )
        return
    yield Check("image", True, tag)
    cfg = sandbox_settings()
    limits = DockerLimits.from_settings(cfg)
    try:
        client.containers.run(
            tag,
            ["true"],
            remove=True,
            network_mode="none",
            read_only=True,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            **limits.engine_options(),
        )
        yield Check(
            "limits",
            True,
            f"memory {limits.memory or UNLIMITED}, {limits.cpus:g} CPU, {limits.pids} pids, "
            "no network, read-only root, no capabilities",
        )
    except Exception as exc:
        yield Check(
            "limits",
            False,
            f"a container with the sandbox limits did not run: {exc}",
            "check the engine's cgroup support (docker info)",
        )
