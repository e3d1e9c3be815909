"""Lose a node mid-run: a 3-node ray.cluster_utils.Cluster (head + 2 nodes with 2 'omoi_sandbox'
slots each), 4 tasks running, one per slot, then the node of two of them is removed. Report what
happened as JSON. Run as a script (`python -m tests.e2e.multinode_loss DIR`): one process can only
be connected to one Ray cluster."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path


def main(work: Path) -> None:
    os.environ["OMOI_NODE_ROOT"] = str(work / "nodes")
    import ray
    from ray.cluster_utils import Cluster

    from omoi import api
    from omoi.runtime.run.plan import parse_plan

    repo = work / "repo"
    repo.mkdir()
    for args in (["init", "-q", "--initial-branch=main"], ["commit", "-q", "--allow-empty", "-m", "start"]):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo, check=True)
    gate = work / "gate"
    wait = f"i=0; while [ ! -e {gate} ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done"
    plan = parse_plan(
        "tasks:\n"
        + "".join(f"  - {{id: p{i}, run: '{wait}; echo {i} > p{i}.txt'}}\n" for i in range(4))
        + "  - {id: all, deps: [p0, p1, p2, p3], run: 'cat p*.txt > all.txt'}\n"
    )
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    nodes = [cluster.add_node(num_cpus=1, resources={"omoi_sandbox": 2}) for _ in range(2)]
    cluster.wait_for_nodes()
    try:
        handle = api.start(
            plan, repo, run_id="loss", sandbox="local", address=cluster.address, max_parallel=4
        )
        deadline = time.monotonic() + 120
        started: dict[str, str] = {}
        while len(started) < 4 and time.monotonic() < deadline:  # wait on events: all four running
            for e in handle.events(timeout=1.0, prefixes=("task.",)):
                if e.kind == "task.started":
                    started[e.task_id] = e.sandbox  # type: ignore[attr-defined]
        slots_by_node = {  # which node each running task's slot actor is on
            slot: ray.get(
                ray.get_actor(slot, namespace="omoi").__ray_call__.remote(lambda self: self._node), timeout=60
            )
            for slot in started.values()
        }
        lost = nodes[0]
        lost_id = lost.node_id
        cluster.remove_node(lost)
        gate.touch()
        finished = handle.wait(timeout=200)
        handle.shutdown()
        log = api.events("loss", repo)
        merged = subprocess.run(
            ["git", "show", "omoi/loss/_merged:all.txt"],
            cwd=repo,
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        print(
            json.dumps(
                {
                    "status": finished.status,
                    "error": finished.error,
                    "lost_tasks": sorted(t for t, s in started.items() if slots_by_node.get(s) == lost_id),
                    "succeeded": Counter(e.task_id for e in log if e.kind == "task.succeeded"),  # type: ignore[attr-defined]
                    "retried": sorted({e.task_id for e in log if e.kind == "task.retrying"}),  # type: ignore[attr-defined]
                    "gap_free": [e.seq for e in log] == list(range(1, len(log) + 1)),
                    "all": merged.split(),
                }
            )
        )
    finally:
        ray.shutdown()
        cluster.shutdown()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
