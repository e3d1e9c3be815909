"""The merge queue's mechanics: merges computed without a work tree, the trees a resolution
builds, the checks a candidate head runs, the run's pull-request text. Decisions (order, the
conflict ladder, the deterministic rules) are in policies/merge/."""
