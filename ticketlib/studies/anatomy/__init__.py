"""ticketlib.studies.anatomy: see ARCHITECTURE.md."""
