"""Every command handler, registered in the catalogue on import."""

from crmflow.aggregates.commands import account, article, campaign, case, lead, opportunity

# Duplicate rules and merges.
from crmflow.aggregates.commands import duplicates  # noqa: I001  (its own block, after the others)

__all__ = ["account", "article", "campaign", "case", "lead", "opportunity", "duplicates"]
