"""The sandbox image, built on this machine: nothing is pulled from a registry, ever.

Default: a minimal Debian root filesystem made with debootstrap (from the Debian package mirror),
an unprivileged user `omoi` (uid 1000), imported with `docker import`. A user with a registry of
their own can build from a Dockerfile instead."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from omoi.runtime.errors import SandboxError

DEFAULT_PACKAGES = ("git", "python3", "ca-certificates")
DEFAULT_MIRROR = "http://deb.debian.org/debian"
SUITE = "bookworm"
SANDBOX_UID = 1000
IMAGE_REPO = "omoi-sandbox"
_CHANGES = [
    "USER omoi",
    "WORKDIR /workspace",
    "ENV HOME=/home/omoi",
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    'CMD ["sleep", "infinity"]',
]


def omoi_version() -> str:
    try:
        return version("omoi")
    except PackageNotFoundError:
        return "0.0.0"


def default_tag(packages: Sequence[str] = DEFAULT_PACKAGES) -> str:
    """`omoi-sandbox:<version>`; a different package list gets its own tag, so it never shadows it."""
    extra = sorted(set(packages) - set(DEFAULT_PACKAGES))
    suffix = "-" + hashlib.sha256(" ".join(extra).encode()).hexdigest()[:8] if extra else ""
    return f"{IMAGE_REPO}:{omoi_version()}{suffix}"


def image_exists(client: Any, tag: str) -> bool:
    import docker.errors

    try:
        client.images.get(tag)
        return True
    except docker.errors.ImageNotFound:
        return False


def build_image(
    client: Any,
    *,
    tag: str | None = None,
    packages: Sequence[str] = DEFAULT_PACKAGES,
    mirror: str = DEFAULT_MIRROR,
    dockerfile: Path | None = None,
    force: bool = False,
    say: Callable[[str], None] = print,
) -> str:
    """Build (or reuse) the sandbox image and return its tag."""
    tag = tag or default_tag(packages)
    if not force and image_exists(client, tag):
        say(f"{tag} is already built (use --force to rebuild)")
        return tag
    if dockerfile is not None:
        if not dockerfile.is_file():
            raise SandboxError(f"--dockerfile {dockerfile}: no such file")
        say(f"building {tag} from {dockerfile}")
        client.images.build(
            path=str(dockerfile.parent), dockerfile=dockerfile.name, tag=tag, pull=False, rm=True
        )
        return tag
    if shutil.which("debootstrap") is None:
        raise SandboxError("debootstrap is not installed (on Debian/Ubuntu: apt-get install debootstrap)")
    with tempfile.TemporaryDirectory(prefix="omoi-rootfs-") as tmp:
        root = Path(tmp) / "rootfs"
        say(f"debootstrap {SUITE} with {', '.join(packages)} (about a minute)")
        _run(
            ["debootstrap", "--variant=minbase", f"--include={','.join(packages)}", SUITE, str(root), mirror]
        )
        _run(
            [
                "chroot",
                str(root),
                "/usr/sbin/useradd",
                "--uid",
                str(SANDBOX_UID),
                "--create-home",
                "--shell",
                "/bin/bash",
                "omoi",
            ]
        )
        _run(
            [
                "chroot",
                str(root),
                "/bin/sh",
                "-c",
                "apt-get clean; rm -rf /var/lib/apt/lists/* /var/cache/apt/*",
            ]
        )
        (root / "workspace").mkdir(exist_ok=True)
        archive = Path(tmp) / "rootfs.tar"
        with tarfile.open(archive, "w") as tar:
            tar.add(root, arcname=".")
        say(f"docker import -> {tag}")
        repository, _, version_tag = tag.partition(":")
        client.api.import_image(
            src=str(archive), repository=repository, tag=version_tag or "latest", changes=_CHANGES
        )
    return tag


def _run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise SandboxError(f"{' '.join(cmd[:2])} failed ({proc.returncode}): " + " | ".join(tail))


_BASE_PROBE = "command -v git && command -v python3 && (id -u 1000 || command -v useradd)"
_ON_BASE = """FROM {base}
USER root
RUN id -u 1000 >/dev/null 2>&1 || useradd --uid 1000 --create-home --shell /bin/sh omoi
RUN mkdir -p /workspace /home/omoi && chown 1000:1000 /workspace /home/omoi
USER 1000
WORKDIR /workspace
ENV HOME=/home/omoi
CMD ["sleep", "infinity"]
"""


def usable_base(client: Any, *, limit: int = 8) -> str | None:
    """A local image a sandbox image can be built on without the network: it has git, python3
    and a uid 1000 (or useradd). Omoi's own images are tried first, then Debian-like ones."""
    tags: list[str] = [str(t) for img in client.images.list() for t in img.tags if not t.endswith(":<none>")]
    rank = [t for t in tags if t.startswith(IMAGE_REPO)] + [
        t
        for t in tags
        if not t.startswith(IMAGE_REPO) and any(k in t for k in ("debian", "ubuntu", "python"))
    ]
    for tag in rank[:limit]:
        try:
            client.containers.run(tag, ["sh", "-c", _BASE_PROBE], network_mode="none", remove=True)
            return tag
        except Exception:  # not usable (no shell, no git, ...): try the next one
            continue
    return None


def ensure_image(client: Any, tag: str, say: Callable[[str], None] = print) -> str | None:
    """The sandbox image for a first run: there already, or built now, with debootstrap, or
    without it from a Dockerfile over a usable local base image. None when neither is possible
    here (the caller falls back to the local sandbox, loudly)."""
    if image_exists(client, tag):
        return tag
    if shutil.which("debootstrap") is not None:
        return build_image(client, tag=tag, say=say)
    base = usable_base(client)
    if base is None:
        return None
    say(f"debootstrap is not installed: building {tag} from the local image {base} (no network)")
    with tempfile.TemporaryDirectory(prefix="omoi-image-") as tmp:
        (Path(tmp) / "Dockerfile").write_text(_ON_BASE.format(base=base), encoding="utf-8")
        try:
            client.images.build(path=tmp, tag=tag, pull=False, rm=True, network_mode="none")
        except Exception as exc:
            raise SandboxError(f"building {tag} on {base} failed: {exc}") from exc
    return tag
