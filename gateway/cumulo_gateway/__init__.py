"""The public edge: Envoy, configured from one list of public gRPC services."""
