"""The merge queue on real Ray, real git and local sandboxes: branches merge as they finish,
conflicts climb the ladder, every merge is verified, a person can take over."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from omoi import api
from omoi.runtime.errors import DeliveryError, InputError
from omoi.runtime.log.events import Event
from omoi.runtime.run.plan import parse_plan
from tests.conftest import RepoFactory, checkout_fingerprint, run_git
from tests.fake_github import FakeGitHub
from tests.helpers import has, of, wait_for_events

pytestmark = pytest.mark.ray


# Each rewrites the line only where it is still `1`: a re-run on the other's work fails, so the
# ladder climbs to a person.
BOTH_REWRITE_ONE = """
tasks:
  - {id: a, run: "grep -q '^1$' VERSION && sed -i 's/^1$/one-a/' VERSION"}
  - {id: b, run: "grep -q '^1$' VERSION && sed -i 's/^1$/one-b/' VERSION"}
"""


def kinds(log: list[Event], prefix: str) -> list[str]:
    return [e.kind for e in log if e.kind.startswith(prefix)]


def test_two_appends_to_one_file_merge_by_rule(
    ray_address: str, make_repo: RepoFactory, tmp_path: Path
) -> None:
    repo = make_repo({"NOTES.md": "# notes\n"})
    before = checkout_fingerprint(repo)
    text = """
tasks:
  - {id: a, run: "echo 'from a' >> NOTES.md"}
  - {id: b, run: "echo 'from b' >> NOTES.md"}
  - {id: c, deps: [a, b], run: "grep -q 'from a' NOTES.md && grep -q 'from b' NOTES.md"}
"""
    finished = api.exec_plan(parse_plan(text), repo, run_id="appends", sandbox="local", max_parallel=2)
    assert finished.status == "succeeded", finished.error
    log = api.events("appends", repo)
    resolved = of(log, "merge.resolved")
    assert len(resolved) == 1
    assert resolved[0].how == "rule"
    assert resolved[0].files == ("NOTES.md",)
    assert "append" in resolved[0].detail
    merged = run_git(repo, "show", f"{finished.commit}:NOTES.md")
    assert "from a" in merged
    assert "from b" in merged
    c_started = of(log, "task.started", "c")[0]
    assert c_started.base == of(log, "merge.succeeded")[1].head, "c starts from the head holding both"
    # delivery: the description tells the conflict story; the branch goes to a remote
    bare = tmp_path / "remote.git"
    run_git(tmp_path, "init", "--quiet", "--bare", str(bare))
    path, text, _ = api.pull_request("appends", repo, push=str(bare))
    assert path.read_text() == text
    for task in ("a", "b", "c"):
        assert f"**{task}**: succeeded (merged)" in text
    assert "resolved by rule (NOTES.md)" in text
    assert run_git(bare, "rev-parse", "omoi/appends/_merged").strip() == finished.commit
    assert of(api.events("appends", repo), "delivery.ready")[0].pushed_to == str(bare)
    with pytest.raises(InputError, match="git push failed"):
        api.pull_request("appends", repo, push=str(tmp_path / "nowhere"))
    assert checkout_fingerprint(repo) == before


def test_omoi_pr_opens_then_updates_a_pull_request_on_a_fake_github(
    ray_address: str, make_repo: RepoFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = make_repo({"README.md": "x\n"})
    finished = api.exec_plan(parse_plan("tasks: [{id: a, run: 'echo a > a.txt'}]"), repo, run_id="prs")
    assert finished.status == "succeeded", finished.error
    bare = tmp_path / "remote.git"
    run_git(tmp_path, "init", "--quiet", "--bare", str(bare))
    fake = FakeGitHub()
    try:
        monkeypatch.setenv("GITHUB_API_URL", fake.url)
        # refused before anything is pushed or written: no token, no --push, a malformed name
        with pytest.raises(InputError, match="needs GITHUB_TOKEN"):
            api.pull_request("prs", repo, push=str(bare), github="acme/widgets")
        monkeypatch.setenv("GITHUB_TOKEN", fake.token)
        with pytest.raises(InputError, match="needs --push"):
            api.pull_request("prs", repo, github="acme/widgets")
        with pytest.raises(InputError, match="OWNER/REPO"):
            api.pull_request("prs", repo, push=str(bare), github="widgets")
        assert not of(api.events("prs", repo), "delivery.ready")
        assert run_git(bare, "branch", "--list").strip() == ""
        path, text, opened = api.pull_request("prs", repo, push=str(bare), github="acme/widgets")
        updated = api.pull_request("prs", repo, push=str(bare), github="acme/widgets").pull_request
        with pytest.raises(DeliveryError, match="HTTP 422"):
            api.pull_request("prs", repo, push=str(bare), github="acme/widgets", base="release")
    finally:
        fake.stop()
    assert len(fake.pulls) == 1, "the second delivery updates the open pull request"
    pull = fake.pulls[1]
    assert (pull["head"]["ref"], pull["base"]["ref"]) == ("omoi/prs/_merged", "main")
    assert pull["body"] == text == path.read_text()
    assert "**a**: succeeded (merged)" in pull["body"]
    ready = of(api.events("prs", repo), "delivery.ready")
    assert [e.pull_request for e in ready] == [pull["html_url"]] * 2 == [opened, updated]
    assert run_git(bare, "rev-parse", "omoi/prs/_merged").strip() == finished.commit


def test_a_command_that_rewrote_the_same_line_is_rerun_on_the_head(
    ray_address: str, make_repo: RepoFactory
) -> None:
    repo = make_repo({"VERSION": "1\n"})
    text = """
tasks:
  - {id: a, run: "sed -i 's/$/-a/' VERSION"}
  - {id: b, run: "sed -i 's/$/-b/' VERSION"}
"""
    finished = api.exec_plan(parse_plan(text), repo, run_id="rerun", sandbox="local", max_parallel=2)
    assert finished.status == "succeeded", finished.error
    log = api.events("rerun", repo)
    conflicted = [e for e in of(log, "merge.conflicted") if e.next == "rerun"]
    assert len(conflicted) == 1
    assert conflicted[0].files == ("VERSION",)
    later = conflicted[0].task_id
    assert [e.how for e in of(log, "merge.resolved", later)] == ["rerun"]
    # the later task's command ran again on top of the other's work: both changes are there
    first = "b" if later == "a" else "a"
    assert run_git(repo, "show", f"{finished.commit}:VERSION").strip() == f"1-{first}-{later}"


def test_a_semantic_conflict_is_named_by_verification_and_fails_the_command_task(
    ray_address: str, make_repo: RepoFactory
) -> None:
    repo = make_repo({"README.md": "x\n"})
    # Each branch alone passes `verify`; merged together they do not.
    text = """
verify: ["test ! -f a.txt || test ! -f b.txt"]
tasks:
  - {id: a, run: "echo a > a.txt"}
  - {id: b, run: "echo b > b.txt"}
  - {id: after, deps: [a, b], run: "true"}
"""
    finished = api.exec_plan(parse_plan(text), repo, run_id="semantic", sandbox="local", max_parallel=2)
    assert finished.status == "failed"
    log = api.events("semantic", repo)
    failed = of(log, "merge.failed")
    assert len(failed) == 1
    culprit = failed[0].task_id
    assert "verification failed" in failed[0].reason or "exited" in failed[0].reason
    assert "could not be merged" in (finished.error or "")
    assert culprit in (finished.error or "")
    rounds = [e for e in of(log, "verify.failed") if e.tasks == (culprit,)]
    assert [e.round for e in rounds] == [1, 2], "one retry filters a flaky check"
    assert of(log, "task.skipped", "after")[0].reason == f"dependency '{culprit}' could not be merged"
    head = run_git(repo, "rev-parse", "omoi/semantic/_merged").strip()
    other = "b" if culprit == "a" else "a"
    files = run_git(repo, "ls-tree", "--name-only", head).split()
    assert f"{other}.txt" in files, "the green branch is merged"
    assert f"{culprit}.txt" not in files, "the head stays at the last green merge"


def test_a_person_resolves_a_conflict_with_take(ray_address: str, make_repo: RepoFactory) -> None:
    repo = make_repo({"VERSION": "1\n"})
    text = BOTH_REWRITE_ONE
    handle = api.start(parse_plan(text), repo, run_id="human", sandbox="local", max_parallel=2)
    result: dict[str, object] = {}

    def wait() -> None:
        result["finished"] = handle.wait()

    waiter = threading.Thread(target=wait)
    try:
        # a re-run on the other's work fails (its line is gone): after two, a person decides
        read = lambda: handle.events(timeout=1.0, prefixes=None)  # noqa: E731
        seen = wait_for_events(read, has("merge.needs_human"), 120)
        needs = of(seen, "merge.needs_human")[0]
        assert needs.files == ("VERSION",)
        with pytest.raises(InputError, match="has no open merge conflict"):
            api.resolve("human", "nope", repo)
        with pytest.raises(InputError, match="still conflicts"):
            api.resolve("human", needs.task_id, repo)
        api.resolve("human", needs.task_id, repo, take="theirs")
        waiter.start()
        waiter.join(120)
    finally:
        handle.shutdown()
    finished = result["finished"]
    assert finished.status == "succeeded", finished.error  # type: ignore[attr-defined]
    log = api.events("human", repo)
    assert [e.how for e in of(log, "merge.resolved", needs.task_id)] == ["human"]
    mine = "one-a" if needs.task_id == "a" else "one-b"
    assert run_git(repo, "show", "omoi/human/_merged:VERSION").strip() == mine


def test_a_conflict_only_in_generated_files_is_regenerated_by_the_plans_command(
    ray_address: str, make_repo: RepoFactory
) -> None:
    repo = make_repo({"requirements.in": "a\nc\n", "requirements.lock": "a\nc\n"})
    lock = "sort requirements.in > requirements.lock"
    text = f"""
generated:
  - {{files: ["*.lock"], run: "{lock}"}}
tasks:
  - {{id: a, run: "echo b-pkg >> requirements.in && {lock}"}}
  - {{id: b, run: "echo aa-pkg >> requirements.in && {lock}"}}
"""
    finished = api.exec_plan(parse_plan(text), repo, run_id="regen", sandbox="local", max_parallel=2)
    assert finished.status == "succeeded", finished.error
    log = api.events("regen", repo)
    climbed = [(e.next, e.files) for e in of(log, "merge.conflicted")]
    # requirements.in (both appended) by rule; the lock file by its generator, on that merge
    assert climbed == [("rule", ("requirements.in",)), ("regenerate", ("requirements.lock",))]
    later = of(log, "merge.conflicted")[-1].task_id
    resolved = of(log, "merge.resolved", later)
    assert [(e.how, e.files) for e in resolved] == [
        ("rule", ("requirements.in",)),
        ("rule", ("requirements.lock",)),
    ]
    assert resolved[1].detail == f"regenerated by `{lock}`"
    assert run_git(repo, "show", f"{finished.commit}:requirements.lock") == "a\naa-pkg\nb-pkg\nc\n"
    assert "<<<<<<<" not in run_git(repo, "show", f"{finished.commit}:requirements.in")
    assert not of(log, "merge.needs_human")


def test_a_person_resolves_while_the_driver_is_gone_and_resume_finishes_the_merge(
    ray_address: str, make_repo: RepoFactory
) -> None:
    repo = make_repo({"VERSION": "1\n"})
    text = BOTH_REWRITE_ONE + "  - {id: after, deps: [a, b], run: \"grep -q '^one-' VERSION\"}\n"
    handle = api.start(parse_plan(text), repo, run_id="humanresume", sandbox="local", max_parallel=2)
    try:
        read = lambda: handle.events(timeout=1.0, prefixes=None)  # noqa: E731
        needs = of(wait_for_events(read, has("merge.needs_human"), 120), "merge.needs_human")[0]
    finally:
        handle.shutdown()  # every actor of the run is gone, as if the driver process had died
    assert api.status("humanresume", repo).finished is None
    api.resolve("humanresume", needs.task_id, repo, take="ours")  # appended to the log alone
    with pytest.raises(InputError, match="has no open merge conflict"):
        api.resolve("humanresume", "after", repo)
    finished = api.resume("humanresume", repo)
    assert finished.status == "succeeded", finished.error
    log = api.events("humanresume", repo)
    assert [e.how for e in of(log, "merge.resolved", needs.task_id)] == ["human"]
    other = "b" if needs.task_id == "a" else "a"
    assert run_git(repo, "show", f"{finished.commit}:VERSION").strip() == f"one-{other}", "ours: the head"
    assert of(log, "task.succeeded", "after"), "the dependent ran once both were merged"
