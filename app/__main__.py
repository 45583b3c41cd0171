"""Entry point of ``python -m app`` (and the ``galchemy`` console script)."""

from app.cli import main

if __name__ == "__main__":
    main()
