"""Embedded data sets: synthetic Italian customer-service chats, so the package runs out of the box."""

from .customer_service import ENTITY_TYPES, DOMAINS, dataset_texts, generate_corpus, generate_sentences, write_dataset

__all__ = ["ENTITY_TYPES", "DOMAINS", "dataset_texts", "generate_corpus", "generate_sentences", "write_dataset"]
