"""The steps behind iac_setup.py: an IAM role, a Redshift cluster or Serverless workgroup, an
ingress rule, and dwh.cfg's HOST and ARN.

settings   dwh.cfg's [AWS], [DWH] and [CLUSTER] for iac, validated (on dwh.config.ConfigReader)
cfgfile    writing HOST / ARN back into dwh.cfg without touching anything else
console    what the person sees: progress, warnings, masked secrets, the delete confirmation
errors     iac's errors, and any failure as one line with its exit code
session    the boto3 session and its clients
context    what each step is handed (and waiting), and what create / delete hand back
ownership  the tags and rule marker by which iac_setup.py knows its own resources
role       the IAM role Redshift assumes to read S3
ingress    the security-group rule that lets one address reach the port
cluster    the provisioned Redshift cluster
serverless the Redshift Serverless namespace and workgroup
"""
