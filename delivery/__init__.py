"""The outbox every outgoing message goes through, and the platform port's outcomes."""
