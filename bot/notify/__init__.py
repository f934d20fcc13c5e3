"""SMS and email through GOV.UK Notify: phone numbers, the Notify messenger, and routing beside the chat."""
