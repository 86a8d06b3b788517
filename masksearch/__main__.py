"""``python -m masksearch``: the same as the ``masksearch`` command."""

from __future__ import annotations

from masksearch.cli import run_main

if __name__ == "__main__":
    run_main()
