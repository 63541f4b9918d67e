"""One module per command noun; each exposes ``register(app: typer.Typer)`` (see ``sedscale.cli``)."""
