"""ticketlib.studies.conservation: see ARCHITECTURE.md."""
