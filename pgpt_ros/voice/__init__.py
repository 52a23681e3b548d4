"""Offline voice commands: audio -> utterances -> speech recognition -> a clean command."""
