"""supportbot: retrieval, the knowledge base.

- `ingest`: `load_documents(folder)` (Markdown, HTML, text, FAQ CSV), `documents_from_records(agent answers)`.
- `chunking`: `chunk(document)` into titled passages; `ChunkingConfig`.
- `index`: `KnowledgeIndex` (FAISS + metadata, exact or HNSW): build, add/update/delete, search, save/load.
- `store`: the atomic, versioned directory layout `KnowledgeIndex.save` writes.
- `embedder`: the `Embedder` protocol the index takes (the intent model's encoder satisfies it).
"""
