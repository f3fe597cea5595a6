"""Every command handler, registered in the catalogue on import."""

from crmflow.aggregates.commands import account, article, campaign, case, lead, lines, opportunity, product

__all__ = ["account", "article", "campaign", "case", "lead", "opportunity", "lines", "product"]
