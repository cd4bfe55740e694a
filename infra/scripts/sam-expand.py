"""Expands template.yaml with samtranslator (installed with cfn-lint) and prints the CloudFormation
JSON on stdout, as `sam deploy` would deploy it: SAM resources become their CloudFormation ones
and policy templates become IAM statements. Local CodeUri/DefinitionUri paths are replaced by S3
placeholders first, as `sam package` would upload them. Usage: python sam-expand.py template.yaml
"""
import json
import os
import sys

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse


class NoManagedPolicies:
    """The template names no managed policy; samtranslator would otherwise ask IAM for them."""

    def load(self):
        return {}


def main(path):
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    with open(path) as f:
        template = yaml_parse(f.read())
    function_globals = template.get("Globals", {}).get("Function", {})
    if "CodeUri" in function_globals:
        function_globals["CodeUri"] = "s3://trailproof-package/code.zip"
    for resource in template.get("Resources", {}).values():
        props = resource.get("Properties", {})
        if resource.get("Type") == "AWS::Serverless::Function" and "CodeUri" in props:
            props["CodeUri"] = "s3://trailproof-package/code.zip"
        if resource.get("Type") == "AWS::Serverless::StateMachine" and "DefinitionUri" in props:
            props["DefinitionUri"] = "s3://trailproof-package/definition.json"
    json.dump(transform(template, {}, NoManagedPolicies()), sys.stdout, indent=1)


if __name__ == "__main__":
    main(sys.argv[1])
