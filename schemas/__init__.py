"""marshmallow 4 schemas: the API and export contract (no Flask, no database)."""
