"""The HTTP API (`crmflow serve`): commands, inbound events, reports, histories, process definitions.

``workers.api.app.create_app`` builds it. This package file imports nothing,
so that the CLI can read the role table (``workers.api.tokens``) without
loading FastAPI for every command.
"""
