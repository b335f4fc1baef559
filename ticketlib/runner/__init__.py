"""ticketlib.runner: see ARCHITECTURE.md."""
