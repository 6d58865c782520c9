"""The region agent: executes cells through its region's router and signs receipts."""
