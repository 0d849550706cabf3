"""PostgreSQL: the system of record. ORM tables, the session factory, query functions and
Alembic migrations."""
