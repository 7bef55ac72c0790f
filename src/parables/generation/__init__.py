"""Corpus generation: constitution -> seeds -> stories with narrated reasoning -> quality gate
-> dedup -> eval-leak guard -> dataset."""
