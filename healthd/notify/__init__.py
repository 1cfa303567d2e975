"""Telling people: the outbox sender (sender: sign, POST, back off, at least once), the
formats (a registry: name -> body, headers, whether a URL's path is secret) and how a
subscriber's URL is shown (urls). formats and urls are pure and are what the API may
import; the sender imports the store and the HTTP client. May import healthd.core,
healthd.plugins (the HTTP client) and healthd.store.
"""
