"""The digital twin: event engine, trace readers, replay and metrics."""
