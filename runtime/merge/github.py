"""The run's pull request on GitHub: opened, or updated when one is already open for the branch,
through the REST API with githubkit (a maintained, typed client). Only `omoi pr` calls it, and
only with a token, a pushed branch and a repository named by the user or by a github.com remote."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from omoi.runtime.errors import DeliveryError

API_URL = "https://api.github.com"
BODY_LIMIT = 65_536  # characters GitHub accepts in a pull request's body
_REMOTE = re.compile(
    r"^(?:(?:https?|ssh|git)://)?(?:[^@/]+@)?github\.com[:/](?P<owner>[\w.-]+)/(?P<name>[\w.-]+?)(?:\.git)?/?$"
)
_NAMED = re.compile(r"^(?P<owner>[\w.-]+)/(?P<name>[\w.-]+)$")


@dataclass(frozen=True)
class Repository:
    owner: str
    name: str
    api_url: str = API_URL

    def __str__(self) -> str:
        return f"{self.owner}/{self.name}"


def named(text: str, api_url: str | None = None) -> Repository | None:
    """`OWNER/REPO`, or None when `text` is not of that shape."""
    m = _NAMED.match(text)
    return None if m is None else Repository(m["owner"], m["name"], api_url or API_URL)


def from_remote(url: str, api_url: str | None = None) -> Repository | None:
    """The GitHub repository a git remote's URL names (https, ssh or scp form), else None."""
    m = _REMOTE.match(url.strip())
    return None if m is None else Repository(m["owner"], m["name"], api_url or API_URL)


def fit_body(text: str, where: str) -> str:
    """The description within GitHub's limit; a longer one ends by saying where the whole is."""
    if len(text) <= BODY_LIMIT:
        return text
    note = f"\n\n… (cut: the whole description is in `{where}`)\n"
    return text[: BODY_LIMIT - len(note)] + note


def open_or_update(repo: Repository, token: str, head: str, base: str, title: str, body: str) -> str:
    """The pull request of branch `head` into `base`: the open one updated (title, body, base),
    or a new one. Returns its web address."""
    from githubkit import GitHub
    from githubkit.exception import GitHubException, RequestFailed

    step = "list open pull requests"
    try:
        with GitHub(token, base_url=repo.api_url, http_cache=False, auto_retry=False, timeout=30.0) as gh:
            pulls = gh.rest.pulls
            found: list[dict[str, Any]] = pulls.list(
                repo.owner, repo.name, head=f"{repo.owner}:{head}", state="open"
            ).json()
            if found:
                number = found[0]["number"]
                step = f"update pull request #{number}"
                resp = pulls.update(repo.owner, repo.name, number, title=title, body=body, base=base)
            else:
                step = f"open a pull request from {head} into {base}"
                resp = pulls.create(repo.owner, repo.name, title=title, head=head, base=base, body=body)
            url: str = resp.json()["html_url"]
            return url
    except RequestFailed as exc:
        said = _message(exc.response.json() if exc.response.content else {})
        raise DeliveryError(str(repo), step, f"HTTP {exc.response.status_code}: {said}") from exc
    except GitHubException as exc:
        raise DeliveryError(str(repo), step, str(exc) or type(exc).__name__) from exc
    except (KeyError, TypeError, ValueError) as exc:
        raise DeliveryError(str(repo), step, f"unexpected answer: {exc!r}") from exc


def _message(data: Any) -> str:
    """GitHub's own words: its message and each validation error's."""
    if not isinstance(data, dict):
        return str(data)[:500]
    parts = [str(data.get("message", ""))]
    for e in data.get("errors") or []:
        parts.append(str(e.get("message") or e) if isinstance(e, dict) else str(e))
    return "; ".join(p for p in parts if p) or "(no message)"
