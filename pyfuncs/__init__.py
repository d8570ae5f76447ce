"""In-database half of blink: the code PL/Python function bodies import.

Nothing here imports ``plpy`` at module load; each entry point receives ``plpy`` and the
session dictionary ``GD`` from the function body, so the package is testable without a server.
"""
