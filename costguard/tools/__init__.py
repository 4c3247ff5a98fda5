"""The outside world behind typed interfaces: cloud, model, ledger and audit, pricing."""
