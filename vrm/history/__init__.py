"""The customer's history of events with vendors, each event sealed."""
