"""inert: describe OpenAI calls as inert, typed ``Request[T]`` values and run them
now (``ImmediateRunner``) or through the Batch API (``BatchRunner``)."""
