"""A local OpenAI-compatible server: chat, files, batches, faults and a billing ledger."""
