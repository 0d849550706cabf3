"""OpenAI Batch API compatibility: `requests` turns an uploaded JSONL of OpenAI requests into
native jobs; `batches` serves the batch as OpenAI's Batch object with its result files."""
