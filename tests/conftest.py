"""The fixture families, each in its own module (as psycopg's tests do)."""

pytest_plugins = [
    "tests.fix_db",
    "tests.fix_models",
    "tests.fix_trainer",
]
