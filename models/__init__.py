"""ML generators: prompts and params in, artifact bytes and facts out.

This package imports nothing else of aigc-jobs and knows nothing of Celery, HTTP or SQL.
Importing it (or `models.params` / `models.registry`) never imports torch; the generator
modules do, and are loaded by name only where a model is actually run.
"""
