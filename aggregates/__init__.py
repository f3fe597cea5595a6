"""crmflow's CRM domain: event-sourced aggregates and the command service."""
