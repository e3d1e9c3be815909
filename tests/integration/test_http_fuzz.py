"""The HTTP API fuzzed from its own OpenAPI document (schemathesis over real uvicorn): whatever a
client sends that the schema allows, or nearly allows, the answer is never a 5xx. The live stream
is left out: it never ends on its own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from omoi import api
from omoi.http.serve import Background
from tests.integration.test_http_api import AUTH, TOKEN, _run


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    from tests.conftest import run_git

    repo = tmp_path_factory.mktemp("fuzz") / "repo"
    repo.mkdir()
    run_git(repo, "init", "--quiet", "--initial-branch=main")
    (repo / "README.md").write_text("fuzz\n")
    run_git(repo, "add", "-A")
    run_git(repo, "commit", "--quiet", "-m", "initial")
    _run(repo)
    with Background(repo, TOKEN) as s:
        yield repo, s.url


def _operations(url: str) -> list[Any]:
    raw = httpx.get(f"{url}/openapi.json", headers=AUTH).json()
    schema = schemathesis.openapi.from_dict(raw)
    ops = [r.ok() for r in schema.get_all_operations()]
    return [op for op in ops if not op.path.endswith("/stream")]


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def _fuzz(url: str, ops: list[Any], data: st.DataObject) -> None:
    op = data.draw(st.sampled_from(ops))
    case = data.draw(op.as_strategy())
    params = case.path_parameters or {}
    if "run_id" in params and data.draw(st.booleans()):  # half reach a run that exists
        case.path_parameters = {**params, "run_id": "live"}
    response = case.call(base_url=url, headers=AUTH, timeout=30)
    assert response.status_code < 500, (case.method, case.formatted_path, case.body, response.text)


def test_the_api_answers_no_5xx_to_anything_its_schema_describes(
    server: tuple[Path, str],
) -> None:
    repo, url = server
    ops = _operations(url)
    assert {op.path for op in ops} >= {"/v1/runs", "/v1/runs/{run_id}/events", "/v1/runs/{run_id}/schedules"}
    _fuzz(url, ops)
    assert api.events("live", repo)  # the log still reads
