"""The embedded default: real PostgreSQL, NATS JetStream, S3 and Envoy servers from pip
packages, used by `make run` and by the test session."""
