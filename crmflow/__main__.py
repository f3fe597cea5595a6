"""``python -m crmflow``: the same entry point as the ``crmflow`` command."""

from crmflow.workers.cli import entrypoint

entrypoint()
