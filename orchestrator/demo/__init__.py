"""The demo: a sample repository template and the scripted model answers (tape) that
drive ``tandem demo`` on the simulated provider."""

from pathlib import Path

DEMO_DIR = Path(__file__).parent
TEMPLATE_DIR = DEMO_DIR / "template"
TAPE_PATH = DEMO_DIR / "tape.yaml"
DEMO_TASK = (
    "Add a slugify helper for product names, let the orders API accept an API key "
    "header, and round discounted prices to the nearest cent."
)
DEMO_TEST_CMD = "{python} -m unittest discover -s tests -t . -q"
