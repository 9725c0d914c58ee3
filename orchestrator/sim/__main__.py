"""``python -m orchestrator.sim``: the same as ``tandem sim`` (used by SimServer.subprocess)."""

from orchestrator.cli import main

if __name__ == "__main__":
    import sys

    main(["sim", *sys.argv[1:]])
