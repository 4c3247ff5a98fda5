"""The model: chat-model factory and prompt (model, prompt), the embedded server (server, launcher), call records."""
