"""Talking to a OneRoster v1.1 provider: tokens, retries, paging, and the HTTP client.

Importing this package does not import httpx: `errors`, `retry`, `paging` and `envelope` are
plain Python that the importer and the tests use on their own.
"""
