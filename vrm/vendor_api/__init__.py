"""The vendor data API: a customer's data as one grant allows it, and a
record of every read."""
