"""Run a plan on a 3-node cluster made with ray.cluster_utils.Cluster and report what happened.

Run as a script (`python -m tests.e2e.multinode_run DIR`): the test process has its own Ray
cluster, and one process can only be connected to one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def main(work: Path) -> None:
    os.environ["OMOI_NODE_ROOT"] = str(work / "nodes")  # each node's workspace root is <this>/<node id>
    import ray
    from ray.cluster_utils import Cluster

    from omoi import api
    from omoi.runtime.run.plan import parse_plan

    repo = work / "repo"
    repo.mkdir()
    for args in (["init", "-q", "--initial-branch=main"], ["commit", "-q", "--allow-empty", "-m", "start"]):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo, check=True)
    plan = parse_plan(
        "tasks:\n"
        + "".join(f"  - {{id: part{i}, run: 'echo {i} > part{i}.txt'}}\n" for i in range(6))
        + "  - {id: all, deps: [part0, part1, part2, part3, part4, part5], run: 'cat part*.txt > all.txt'}\n"
    )
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    for _ in range(2):
        cluster.add_node(num_cpus=1, resources={"omoi_sandbox": 2})
    cluster.wait_for_nodes()
    try:
        finished = api.exec_plan(
            plan, repo, run_id="multi", sandbox="local", address=cluster.address, max_parallel=4
        )
        succeeded = api.events("multi", repo, kind="task.succeeded")
        git_out = subprocess.run(
            ["git", "show", "omoi/multi/_merged:all.txt"],
            cwd=repo,
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        worktrees = subprocess.run(
            ["git", "worktree", "list"], cwd=repo, capture_output=True, text=True, check=True
        ).stdout.splitlines()
        print(
            json.dumps(
                {
                    "status": finished.status,
                    "error": finished.error,
                    "nodes": sorted({e.node for e in succeeded}),  # type: ignore[attr-defined]
                    "all": git_out.split(),
                    "user_repo_worktrees": len(worktrees),
                    "node_clones": sorted(
                        str(p.relative_to(work)) for p in (work / "nodes").glob("*/multi/repo.git")
                    ),
                }
            )
        )
    finally:
        ray.shutdown()
        cluster.shutdown()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
