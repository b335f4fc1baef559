"""ticketlib.studies.bert_transfer: see ARCHITECTURE.md."""
