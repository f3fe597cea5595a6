from workers.cli import entrypoint

entrypoint()
