"""ticketlib.core: see ARCHITECTURE.md."""
