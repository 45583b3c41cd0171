"""galchemy's Lightning application: data, networks, generator families and the CLI."""
