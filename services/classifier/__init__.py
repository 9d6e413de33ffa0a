"""The classifier: tags customer messages with a topic."""
