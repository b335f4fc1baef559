"""ticketlib.studies.deployment: see ARCHITECTURE.md."""
