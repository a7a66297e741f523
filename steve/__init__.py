"""The ``steve`` command: command line and config composition only, no logic."""
