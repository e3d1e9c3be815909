"""Git: task trees on task branches, merges without a work tree, and git as the transport between
nodes."""
