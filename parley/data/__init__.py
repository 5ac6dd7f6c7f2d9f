"""Conversation data for data scientists: export, labels, training, model versions, evaluation."""
