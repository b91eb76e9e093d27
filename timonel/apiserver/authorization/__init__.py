"""Authorization: RBAC evaluation, the request authorizer and the bootstrap policy."""
