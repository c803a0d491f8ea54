"""One module per tab, each exposing `build(services)` and its handlers as plain module-level functions."""
