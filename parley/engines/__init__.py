"""Answer engines with IO: the OpenAI-compatible LLM engine, its cache and its safeguards."""
