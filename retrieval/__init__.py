"""supportbot: retrieval, the knowledge base.

- `ingest`: `load_documents(folder)` (Markdown, HTML, text, FAQ CSV), `documents_from_records(agent answers)`.
- `chunking`: `chunk(document)` into titled passages; `ChunkingConfig`.
- `index`: `KnowledgeIndex` (FAISS + metadata, exact or HNSW): built once per model version, search, save/load.
- `store`: the write-once directory `KnowledgeIndex.save` writes (renamed into place) and its verified load.
- `embedder`: the `Embedder` protocol the index takes (the intent model's encoder satisfies it).
"""
