"""Sandboxes: the seam every backend implements, the local, noop and Docker backends, the sandbox
image, and what bounds a task's workspace (files opened beneath it, its size)."""
