"""cumulo's shared infrastructure: settings, logging, database and outbox, events,
gRPC server bootstrap and interceptors, token verification, errors.

Infrastructure only: no service's domain code lives here.
"""
