"""One module per CLI subcommand; see danmask.cli."""
