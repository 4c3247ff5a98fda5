"""The graph as the LangGraph API server serves it (langgraph.json), with the dependencies bound in."""
