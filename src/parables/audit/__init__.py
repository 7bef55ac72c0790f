"""Corpus audit: how pre-training text portrays AI characters, and the rebalancing plan."""

from parables.audit.classifier import default_classifier, tropes
from parables.audit.prefilter import Prefilter, load_terms
from parables.audit.scan import AuditConfig, audit_corpus, rebalancing_plan

__all__ = ["AuditConfig", "Prefilter", "audit_corpus", "default_classifier", "load_terms",
           "rebalancing_plan", "tropes"]
