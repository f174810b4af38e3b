"""Names that must agree across processes: Redis key layout and Celery task names.

Every key lives under a configurable prefix (``AEP_KEY_PREFIX``, default ``aep:``) so the demo, the
tests and a real deployment can share one Redis without touching each other's quotas.

Key layout (relative to the prefix)::

    run:{run_id}                 HASH  the run record (request JSON, status, AEP ids, cursor, error)
    run:{run_id}:timeline        LIST  JSON step events, oldest first
    runs                         ZSET  run ids by creation time (for `aep-activator runs`)
    idem:{key}                   STRING run id for an idempotency key
    quota:…                      see aep/lua/quota_*.lua
    lock:audience:{audience}     STRING owning run id, with a TTL (aep/locks.py)
    delay:due                    ZSET  delayed task member -> due epoch s (aep/delays.py)
    delay:payload                HASH  member -> serialised task signature
    delay:lease                  ZSET  member -> lease expiry while a pump publishes it
    ims:token:{client_hash}      STRING cached IMS access token (JSON), TTL = its lifetime
    ims:lock:{client_hash}       STRING single-flight refresh lock
"""

DEFAULT_KEY_PREFIX = "aep:"

# Celery task names: stable, public (Flower shows them; other services may send_task them).
TASK_START = "activation.start"
TASK_CREATE_SEGMENT_JOB = "activation.create_segment_job"
TASK_POLL_SEGMENT_JOB = "activation.poll_segment_job"
TASK_CREATE_EXPORT_JOB = "activation.create_export_job"
TASK_POLL_EXPORT_JOB = "activation.poll_export_job"
TASK_RUN_ACTIVATION = "activation.run_activation"
TASK_POLL_ACTIVATION = "activation.poll_activation"

STEP_TASKS = (
    TASK_CREATE_SEGMENT_JOB,
    TASK_POLL_SEGMENT_JOB,
    TASK_CREATE_EXPORT_JOB,
    TASK_POLL_EXPORT_JOB,
    TASK_RUN_ACTIVATION,
    TASK_POLL_ACTIVATION,
)

# Quota names.
QUOTA_ADHOC = "adhoc"
QUOTA_SEGMENT_JOBS = "segment_jobs"
