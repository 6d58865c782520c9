"""The coordinator: runs jobs over the regions' agents and keeps their receipts."""
