"""ticketlib.verdicts: see ARCHITECTURE.md."""
