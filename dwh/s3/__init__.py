"""Reading the sources: S3 or a local folder, JSON documents, manifests and compaction for Redshift."""
