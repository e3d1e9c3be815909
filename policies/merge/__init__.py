"""The merge queue's decisions: the deterministic rules for a conflicted file, the conflict
ladder's next rung, and the order ready branches are merged in."""
