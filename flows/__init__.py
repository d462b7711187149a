"""The Prefect flows. Importing any of them makes Prefect's temporary API server start deaf to Ctrl-C
(tasks/runtime/temporary_api.py), so Ctrl-C stops a run promptly instead of leaving it retrying against a server
that died with it."""

from tasks.runtime.temporary_api import detach_temporary_api

detach_temporary_api()
