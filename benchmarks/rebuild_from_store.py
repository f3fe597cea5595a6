"""Rebuild of the read models from a real SQLite store of EVENTS events (default 1000000), as before: now
``projections.py --backends "" --latency-seconds 0 --store-rebuild-events EVENTS``; other options pass on."""
import runpy
import sys
from pathlib import Path

if __name__ == "__main__":
    args = sys.argv[1:]
    events = args.pop(0) if args and not args[0].startswith("-") else "1000000"
    sys.argv[1:] = ["--backends", "", "--latency-seconds", "0", "--store-rebuild-events", events, *args]
    runpy.run_path(str(Path(__file__).with_name("projections.py")), run_name="__main__")
