"""Sample comment files shipped with danmask (made-up comments, Apache-2.0), used by `danmask demo`."""
from pathlib import Path

DEMO_COMMENTS = Path(__file__).with_name("demo-comments.xml")
