"""The embedded default: real PostgreSQL, NATS JetStream, S3 and Envoy servers from pip
packages, used by `make run` and by the test session.

Imported before anything imports grpc (`python -m cumulo_devstack` imports the package first;
pytest loads it as a plugin, `-p cumulo_devstack` in pyproject.toml): both start servers as
child processes (fork, then exec) from a process that runs gRPC. gRPC's fork handlers are
meant for a fork *without* exec; in the child they touch gRPC's poller, whose descriptors are
gone, and the child may die (seen: pg_ctl killed by SIGSEGV while restarting PostgreSQL after
a crash test, its stderr naming gRPC's epoll poller). Every child of ours execs at once, so
the handlers are off (the environment variable gRPC reads when it is imported)."""

import os

os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
