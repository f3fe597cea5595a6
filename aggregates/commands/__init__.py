"""Every command handler, registered in the catalogue on import."""

from crmflow.aggregates.commands import (
    account,
    activity,
    article,
    campaign,
    case,
    duplicates,
    lead,
    lines,
    opportunity,
    product,
    segments,  # account.segment: segmentation that drives action
)

__all__ = ["account", "article", "campaign", "case", "lead", "opportunity", "duplicates", "activity", "lines",
           "product", "segments"]  # fmt: skip
