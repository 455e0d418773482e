"""One module per sub-command; each exposes ``register(subparsers)`` which sets ``func=run`` (``run(args) -> int``)."""
