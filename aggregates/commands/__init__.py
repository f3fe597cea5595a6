"""Every command handler, registered in the catalogue on import."""

from crmflow.aggregates.commands import account, article, campaign, case, lead, opportunity

# Activities (tasks, calls, e-mails, meetings about a record).
from crmflow.aggregates.commands import activity  # noqa: E402

__all__ = ["account", "article", "campaign", "case", "lead", "opportunity", "activity"]
