"""Models: the Anthropic Messages client with omoi's discipline around it, and the scripted
Anthropic-compatible server tests and the demo talk to."""
