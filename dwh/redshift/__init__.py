"""Amazon Redshift: the warehouse class (connect, COPY's load errors) and IAM database credentials."""
