"""What an operator configures: settings (defaults, environment, flags -> one frozen
Settings, each variable declared once with its meaning) and sources (a source's
declaration, validated against its plugin). Reads files and the environment, nothing
else. May import healthd.core and healthd.plugins (a source's config is its plugin's).
"""
