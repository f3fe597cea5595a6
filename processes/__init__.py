"""The YAML process language: schema, loader, expressions, calendars, validation, engine."""
