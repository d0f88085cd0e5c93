"""Enrichment of whole columns: names, geography, registrable domains, owners."""
