"""The CDK construct: ``PythonDependencyLayer`` (layer.py), its bundling hooks (bundling.py) and the
app-wide defaults from cdk.json (context.py). The only stage that imports aws_cdk.
"""
