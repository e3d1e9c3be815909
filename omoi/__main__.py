"""`python -m omoi`: the same CLI as the `omoi` command."""

from omoi.cli import main

main()
