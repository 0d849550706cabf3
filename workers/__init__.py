"""Celery workers: claim a job, run its generator from models/, store the artifacts and record
the outcome in PostgreSQL."""
