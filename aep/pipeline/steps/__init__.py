"""The chain's steps as domain functions: safe to run twice, no Celery, no sleeping (see base.py)."""
