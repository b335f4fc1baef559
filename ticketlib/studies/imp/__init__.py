"""ticketlib.studies.imp: see ARCHITECTURE.md."""
