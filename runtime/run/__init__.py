"""What a run is: its tasks, plan file, DAG, options, its state as a fold over the log, where it lives
on disk, and one attempt's request and result."""
