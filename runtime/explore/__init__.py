"""Explore, the static part: a deterministic picture of a repository (languages, manifests, the
Python import graph, symbols, churn) that the spec is grounded on."""
