"""ticketlib.studies.early_tickets: see ARCHITECTURE.md."""
