"""crmflow on Kafka: the one client wrapper, the brokers it runs on, and what moves events to and from topics."""
