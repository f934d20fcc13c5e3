"""The Google Chat adapter: request verification, rendering, the Messenger port."""
