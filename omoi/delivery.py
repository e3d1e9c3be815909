"""The commands of the merge queue's end of a run: `omoi resolve` (a person's answer to a
conflict) and `omoi pr` (the pull request's text, a push, a GitHub pull request). Registered on
the `omoi` group by cli.py."""

from __future__ import annotations

import click

from omoi.console import guard, out, repo_option, state_option


@click.command()
@click.argument("run_id")
@click.argument("task_id")
@click.option(
    "--take",
    type=click.Choice(["ours", "theirs"]),
    default=None,
    help="Take each conflicting hunk from one side: ours (the integration head) or theirs (the task branch).",
)
@repo_option
@state_option
@guard
def resolve(run_id: str, task_id: str, take: str | None, repo: str, state_dir: str | None) -> None:
    """Continue a merge that waits for a person (`merge.needs_human`): with what you committed on
    the task's branch, or with --take."""
    from omoi import api

    seq = api.resolve(run_id, task_id, repo, take=take, state_dir=state_dir)  # type: ignore[arg-type]
    how = f"taking {take}" if take else "with the task branch as you left it"
    out.print(f"merge of task {task_id} of run {run_id} continues {how} (event {seq})", highlight=False)


@click.command("pr")
@click.argument("run_id")
@click.option(
    "--push", "remote", default=None, help="Push the run's merged branch to this git remote (name or URL)."
)
@click.option(
    "--github",
    default=None,
    metavar="OWNER/REPO",
    help="Open (or update) the pull request in this GitHub repository; default: the --push remote's, "
    "if it is on github.com. Needs GITHUB_TOKEN; GITHUB_API_URL names another API host.",
)
@click.option(
    "--base", default=None, help="The branch the pull request merges into (default: the run's base)."
)
@repo_option
@state_option
@guard
def pr(
    run_id: str, remote: str | None, github: str | None, base: str | None, repo: str, state_dir: str | None
) -> None:
    """Print the pull request's description of a finished run (Markdown: the goal, each task and
    its agent's summary, the spec, discoveries, every conflict and how it was resolved, the
    checks, tokens and cost) and write it into the run's directory as PR.md. With --push and
    GITHUB_TOKEN, open the pull request on GitHub, or update the one already open."""
    from omoi import api

    done = api.pull_request(run_id, repo, push=remote, github=github, base=base, state_dir=state_dir)
    click.echo(done.text)
    said = [f"written to {done.path}"] + ([f"pushed to {remote}"] if remote else [])
    said += [f"pull request: {done.pull_request}"] if done.pull_request else []
    click.echo("; ".join(said), err=True)
