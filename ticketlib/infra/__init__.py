"""ticketlib.infra: see ARCHITECTURE.md."""
