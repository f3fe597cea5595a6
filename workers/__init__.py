"""The runnable parts of crmflow: CLI, workers, HTTP API."""
