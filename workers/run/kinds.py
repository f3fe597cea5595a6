"""The worker kinds, apart from the runner: the CLI lists them in --help without importing the workers."""

WORKER_KINDS = ("relay", "intake", "process", "timer", "projection")
