"""The spec's judgement: its phases and what follows each submission and gate (flow), and whether a
document is good enough and grounded in the code (checks)."""
