"""Every command handler, registered in the catalogue on import."""

from crmflow.aggregates.commands import account, activity, article, campaign, case, lead, opportunity

__all__ = ["account", "article", "campaign", "case", "lead", "opportunity", "activity"]
