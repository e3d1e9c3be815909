"""Opening a pull request through the real githubkit client against a local fake of GitHub's
REST endpoints on 127.0.0.1: never the network."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from omoi.runtime.errors import DeliveryError
from omoi.runtime.merge import github as gh
from tests.fake_github import FakeGitHub


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    server = FakeGitHub()
    yield server
    server.stop()


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/acme/widgets.git",
        "https://github.com/acme/widgets",
        "git@github.com:acme/widgets.git",
        "ssh://git@github.com/acme/widgets.git",
    ],
)
def test_a_github_remote_names_its_repository(url: str) -> None:
    assert gh.from_remote(url) == gh.Repository("acme", "widgets", gh.API_URL)


@pytest.mark.parametrize(
    "url", ["/srv/git/widgets.git", "https://gitlab.com/acme/widgets.git", "acme/widgets"]
)
def test_other_remotes_name_none(url: str) -> None:
    assert gh.from_remote(url) is None


def test_a_long_description_is_cut_to_githubs_limit_saying_where_the_whole_is() -> None:
    body = gh.fit_body("x" * 70_000, "/runs/r/PR.md")
    assert len(body) <= gh.BODY_LIMIT
    assert body.endswith("the whole description is in `/runs/r/PR.md`)\n")
    assert gh.fit_body("short", "p") == "short"


def test_a_pull_request_is_opened_then_updated_not_opened_twice(fake: FakeGitHub) -> None:
    repo = gh.Repository("acme", "widgets", fake.url)
    url = gh.open_or_update(repo, fake.token, "omoi/r/_merged", "main", "Add JWT", "first text")
    assert url == "https://github.example/acme/widgets/pull/1"
    again = gh.open_or_update(repo, fake.token, "omoi/r/_merged", "main", "Add JWT", "second text")
    assert again == url
    assert len(fake.pulls) == 1
    assert fake.pulls[1]["body"] == "second text"
    assert [(s.method, s.path) for s in fake.seen] == [
        ("GET", "/repos/acme/widgets/pulls"),
        ("POST", "/repos/acme/widgets/pulls"),
        ("GET", "/repos/acme/widgets/pulls"),
        ("PATCH", "/repos/acme/widgets/pulls/1"),
    ]
    assert fake.seen[3].body == {"title": "Add JWT", "body": "second text", "base": "main"}
    assert fake.seen[0].query == {"head": ["acme:omoi/r/_merged"], "state": ["open"]}
    assert fake.seen[1].body == {
        "title": "Add JWT",
        "head": "omoi/r/_merged",
        "base": "main",
        "body": "first text",
    }


def test_githubs_refusals_are_errors_naming_the_step_and_its_words(fake: FakeGitHub) -> None:
    repo = gh.Repository("acme", "widgets", fake.url)
    with pytest.raises(
        DeliveryError, match=r"acme/widgets: could not list open pull requests: HTTP 401: Bad cred"
    ):
        gh.open_or_update(repo, "wrong", "b", "main", "t", "x")
    with pytest.raises(
        DeliveryError, match=r"open a pull request from b into nope: HTTP 422: Validation Failed"
    ):
        gh.open_or_update(repo, fake.token, "b", "nope", "t", "x")
    assert fake.pulls == {}
