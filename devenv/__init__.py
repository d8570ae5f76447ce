"""Developer environment: where state lives, which OS user runs PostgreSQL, throwaway clusters."""
