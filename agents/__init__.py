"""The agent roles: planner, editor, reviewer, PR writer."""
