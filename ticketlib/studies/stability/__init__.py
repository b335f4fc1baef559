"""ticketlib.studies.stability: see ARCHITECTURE.md."""
