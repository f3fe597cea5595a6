"""Read models for analysts: SQL tables kept exactly once per event, and the reports over them."""
