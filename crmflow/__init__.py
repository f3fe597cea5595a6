"""crmflow: an event-sourced business-process engine for CRM.

One namespace: ``crmflow.aggregates`` (the domain), ``crmflow.processes`` (the
YAML process language and engine), ``crmflow.projections`` (read models and
reports) and ``crmflow.workers`` (the runnable parts: Kafka, workers, CLI, HTTP
API). The folders keep the design card's layout in the repository; the
packaging maps them under this package.
"""

from crmflow.aggregates.topics import register_legacy_topics

register_legacy_topics()
