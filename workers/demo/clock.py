"""The demo's simulated clock: moved forward by the demo, read by every worker thread."""

from __future__ import annotations

from datetime import datetime


class SimulatedClock:
    """Days pass in seconds: the demo moves the time, workers and commands read it.

    Only the demo's thread moves it, and only forward, so readers never see
    time go back; a plain attribute is enough (assignment is atomic).
    """

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("the simulated clock needs an aware start time")
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def move_to(self, moment: datetime) -> None:
        if moment < self.now:
            raise ValueError(f"the simulated clock only moves forward: {moment} is before {self.now}")
        self.now = moment
