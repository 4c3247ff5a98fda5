"""The application layer: runners, workers and alert sources, above the graph."""
