"""The notifier: delivers outbound messages on their channel, once, and reports the outcome."""
