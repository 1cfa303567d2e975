"""Telling people: the outbox sender (sender: one attempt at a target, sign, POST or send
by Apprise, back off, at least once), the formats (a registry: name -> body, headers,
transport, whether a URL's path is secret), Apprise targets (apprise_target: email, chat,
push, off the event loop), the message a person reads (message), what `notifications add`
decides about a target (targets) and how a target's URL is shown (urls). formats, message
and urls are pure and are what the API may import; the sender imports the store, the HTTP
client and Apprise. May import healthd.core, healthd.plugins (the HTTP client) and
healthd.store.
"""
