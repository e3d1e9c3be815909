"""The agent loop: model turns whose tool calls run in the task's sandbox, its tools and prompts."""
