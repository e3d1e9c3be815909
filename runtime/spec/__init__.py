"""The spec's mechanics: its documents, prompts, conversations, gates, task tree and events. What
they mean (phases, checks, gate outcomes) is decided in policies/spec/."""
