"""What a monitoring system reads: Prometheus metrics (``metrics.py``, ``collectors.py``, ``multiprocess.py``),
structured logs (``logs.py``) and the liveness stamps of beat and workers in Redis (``heartbeats.py``).

It sits just above ``db/`` so the executor, the scheduler, the adapters and the notification sender can all
record into it; it knows nothing of runs beyond table names."""
