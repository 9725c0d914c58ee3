"""`python -m orchestrator` is the `tandem` command."""

from orchestrator.cli import main

main()
