from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from omoi.cli import main
from omoi.cluster.runner import make_backend
from omoi.runtime.config import sandbox_settings
from omoi.runtime.errors import InputError
from omoi.runtime.git.repo import inspect_repo
from omoi.runtime.run.paths import RunPaths
from omoi.runtime.sandbox.docker import DockerBackend
from tests.conftest import RepoFactory


@pytest.mark.parametrize(
    ("var", "value", "says"),
    [
        ("OMOI_SANDBOX_MEMORY", "lots", "OMOI_SANDBOX_MEMORY: 'lots' is not a size"),
        ("OMOI_SANDBOX_PIDS", "3", "OMOI_SANDBOX_PIDS: Input should be greater than or equal to 16"),
        ("OMOI_SANDBOX_CPUS", "x", "OMOI_SANDBOX_CPUS: Input should be a valid number"),
    ],
)
def test_bad_settings_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str, says: str
) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(InputError) as info:
        sandbox_settings()
    assert str(info.value).startswith(says)


def test_settings_reach_the_docker_backend(monkeypatch: pytest.MonkeyPatch, make_repo: RepoFactory) -> None:
    monkeypatch.setenv("OMOI_SANDBOX_MEMORY", "768m")
    monkeypatch.setenv("OMOI_SANDBOX_POOL", "3")
    monkeypatch.setenv("OMOI_SANDBOX_IMAGE", "my-sandbox:1")
    info = inspect_repo(make_repo())
    backend = make_backend("docker", RunPaths(info, "r", info.git_dir / "omoi"))
    assert isinstance(backend, DockerBackend)
    assert (backend.limits.memory, backend.pool, backend.image) == ("768m", 3, "my-sandbox:1")


def test_a_bad_setting_stops_exec_before_anything_is_written(
    monkeypatch: pytest.MonkeyPatch, make_repo: RepoFactory, tmp_path: Path
) -> None:
    monkeypatch.setenv("OMOI_SANDBOX_MEMORY", "lots")
    repo = make_repo()
    plan = tmp_path / "p.yaml"
    plan.write_text("tasks: [{id: a, run: 'true'}]\n")
    result = CliRunner().invoke(main, ["exec", str(plan), "--repo", str(repo), "--sandbox", "docker"])
    assert result.exit_code == 2, result.output
    assert "OMOI_SANDBOX_MEMORY" in result.output
    assert not (repo / ".git" / "omoi").exists()


def test_settings_that_would_remove_a_limit_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from omoi.runtime.config import sandbox_settings
    from omoi.runtime.errors import InputError

    for var, value in (
        ("OMOI_SANDBOX_MEMORY", "0"),
        ("OMOI_SANDBOX_MEMORY", "1"),
        ("OMOI_SANDBOX_TMPFS", "0"),
        ("OMOI_SANDBOX_TMPFS", "unlimited"),
        ("OMOI_SANDBOX_CPUS", "0.001"),
        ("OMOI_SANDBOX_DISK", "0"),
        ("OMOI_SANDBOX_MAX_FILE", "0"),
    ):
        monkeypatch.setenv(var, value)
        with pytest.raises(InputError, match=var):
            sandbox_settings()
        monkeypatch.delenv(var)
    monkeypatch.setenv("OMOI_SANDBOX_MEMORY", "unlimited")
    monkeypatch.setenv("OMOI_SANDBOX_DISK", "unlimited")
    cfg = sandbox_settings()
    assert cfg.tree_limits().disk is None
    assert cfg.memory == "unlimited"
