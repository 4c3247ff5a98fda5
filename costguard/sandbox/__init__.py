"""The sandbox: a local EC2 emulator, the demo fleet, a scripted model and the demo. Only the CLI imports it."""
