"""The datastore behind the API server, reached only through the `Storage` protocol."""
